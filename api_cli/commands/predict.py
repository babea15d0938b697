"""``trainq predict``: the seed's demo — a few test examples, their true and predicted classes.

The examples, their scaling and the class names are those of the dataset version the run
recorded (the built-in Fashion-MNIST for a run without one).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from api_cli.output import (
    Format,
    FormatOption,
    JsonShorthand,
    chosen_format,
    print_csv,
    print_json,
    print_table,
)
from api_cli.state import STATE
from storage.errors import CheckpointNotFoundError
from storage.validation import MAX_ID, MAX_SEED, MAX_STEPS

#: The fields of a prediction (``worker.prediction.Prediction``) as every format shows them.
PREDICTION_HEADER = (
    "index",
    "true_class",
    "true_name",
    "predicted_class",
    "predicted_name",
    "probability",
)


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
    output_format: FormatOption = Format.TABLE,
    json_output: JsonShorthand = False,
) -> None:
    """Predict random test images with a run's weights (NumPy; no TensorFlow start-up).

    Table, CSV and JSON show the same fields: index, true and predicted class and name, the
    predicted class's probability.

    Example: trainq predict 7 --samples 3 --seed 1
    """
    output_format = chosen_format(output_format, json_output)
    from worker.config import parse_train_config
    from worker.prediction import sample_predictions
    from worker.training_data import load_training_data

    repository = STATE.repository
    run = repository.get_run(run_id)
    found = (
        repository.latest_checkpoint(run_id)
        if checkpoint is None
        else repository.get_checkpoint(run_id, checkpoint)
    )
    if found is None:
        raise CheckpointNotFoundError(f"run {run_id} has no checkpoint yet")
    data = load_training_data(parse_train_config(run.config), STATE.settings, repository)
    predictions = sample_predictions(found.arrays, data, n=samples, seed=seed)
    rows = [asdict(prediction) for prediction in predictions]
    if output_format is Format.JSON:
        print_json(rows)
    elif output_format is Format.CSV:
        print_csv(PREDICTION_HEADER, [tuple(row.values()) for row in rows])
    else:
        print_table(
            f"run {run_id}, checkpoint {found.info.step}",
            PREDICTION_HEADER,
            [tuple(row.values()) for row in rows],
        )
