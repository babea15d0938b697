"""TensorFlow stays out of every process that does not train (the CLI, a Celery parent)."""

from __future__ import annotations

import subprocess
import sys


def imported_modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(result.stdout.split())


def test_config_data_prediction_and_training_state_do_not_import_tensorflow() -> None:
    modules = imported_modules_after(
        "import worker, worker.config, worker.data, worker.prediction\n"
        "import worker.training, worker.training.state, worker.training.batches\n"
        "from worker.training import TrainingState, ChunkReport, TrainResult"
    )
    assert "worker.prediction" in modules
    assert "tensorflow" not in modules
    assert "keras" not in modules


def test_train_imports_tensorflow_when_touched() -> None:
    modules = imported_modules_after("from worker.training import train")
    assert "tensorflow" in modules


def test_preloading_tensorflows_dependencies_for_job_processes_does_not_import_tensorflow() -> None:
    modules = imported_modules_after(
        "from worker.cluster.warm_up import preload_tensorflow_dependencies\n"
        "preload_tensorflow_dependencies()"
    )
    assert "ml_dtypes" in modules
    assert "tensorflow" not in modules
    assert "keras" not in modules


def test_importing_tensorflow_leaves_keras_out_yet_importable_afterwards() -> None:
    # TensorFlow's __init__ imports Keras eagerly (a third of the import's CPU time); trainq's
    # import refuses it for that moment only (worker.tensorflow_import).
    code = (
        "import sys\n"
        "from worker.tensorflow_import import tf\n"
        "print('keras' in sys.modules, 'matplotlib' in sys.modules)\n"
        "print(float(tf.reduce_sum(tf.ones([3]))))\n"
        "print(tf.keras.layers.Dense(2).units)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split("\n")[:3] == ["False False", "3.0", "2"], result.stderr
