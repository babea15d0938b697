"""``trainq predict``: the seed's demo — a few test images, their true and predicted classes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from api_cli.output import print_json, print_table
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_SEED, MAX_STEPS


def predict(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The run's id.")],
    samples: Annotated[int, typer.Option(min=1, max=10_000, help="How many test images.")] = 3,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, max=MAX_SEED, help="Pick the images with this seed (random if omitted)."
        ),
    ] = None,
    checkpoint: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_STEPS, help="Checkpoint step (default: the newest)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Predict random test images with a run's weights (NumPy; no TensorFlow start-up).

    Example: trainq predict 7 --samples 3 --seed 1
    """
    from worker.data import load_fashion_mnist
    from worker.prediction import sample_predictions

    repository = STATE.repository
    repository.get_run(run_id)
    found = (
        repository.latest_checkpoint(run_id)
        if checkpoint is None
        else repository.get_checkpoint(run_id, checkpoint)
    )
    if found is None:
        raise CheckpointNotFoundError(f"run {run_id} has no checkpoint yet")
    data = load_fashion_mnist(STATE.settings.data_dir)
    predictions = sample_predictions(found.arrays, data, n=samples, seed=seed)
    if json_output:
        print_json([asdict(prediction) for prediction in predictions])
        return
    print_table(
        f"run {run_id}, checkpoint {found.info.step}",
        ("test image", "true class", "predicted", "probability", "correct"),
        [
            (
                p.index,
                p.true_name,
                p.predicted_name,
                p.probability,
                "yes" if p.true_class == p.predicted_class else "no",
            )
            for p in predictions
        ],
    )
