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
        "from worker.warm_up import preload_tensorflow_dependencies\n"
        "preload_tensorflow_dependencies()"
    )
    assert "ml_dtypes" in modules
    assert "tensorflow" not in modules
    assert "keras" not in modules
