"""Evaluation over a whole split and NumPy predictions, checked against independent NumPy maths."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from worker.config import Init, Schedule, TrainConfig
from worker.data import CLASS_NAMES, FashionMnist
from worker.errors import IncompatibleWeightsError
from worker.evaluation import evaluate
from worker.prediction import predict_probabilities, sample_predictions
from worker.training import train

Arrays = dict[str, npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def trained(fashion_mnist: FashionMnist) -> Arrays:
    cfg = TrainConfig(
        steps=400,
        chunk_steps=100,
        checkpoint_every_steps=400,
        seed=3,
        init=Init.ZEROS,
        learning_rate=0.05,
        momentum=0.9,
        schedule=Schedule.COSINE,
    )
    return dict(train(cfg, fashion_mnist).state.arrays)


def numpy_logits(arrays: Arrays, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    x = images.astype(np.float64) / 255.0
    return x @ arrays["W"].astype(np.float64) + arrays["b"].astype(np.float64)


def test_evaluation_matches_an_independent_numpy_computation(
    fashion_mnist: FashionMnist, trained: Arrays
) -> None:
    images, labels = fashion_mnist.split("test")
    result = evaluate(trained, images, labels)

    logits = numpy_logits(trained, images)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probabilities[np.arange(len(labels)), labels].mean()
    predicted = logits.argmax(axis=1)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels, predicted), 1)

    assert result.n_examples == 10_000
    assert result.loss == pytest.approx(loss, rel=1e-5)
    # float32 against float64 may flip an example whose two best logits almost tie.
    assert result.accuracy == pytest.approx(np.mean(predicted == labels), abs=3e-4)
    assert np.abs(result.confusion - confusion).sum() <= 6
    assert result.confusion.sum() == 10_000
    assert result.confusion.sum(axis=1).tolist() == [1_000] * 10  # rows are the true classes
    per_class = np.diag(confusion) / confusion.sum(axis=1)
    assert np.allclose(np.array(result.per_class_accuracy, float), per_class, atol=3e-3)
    assert result.device == "CPU:0"


def test_the_training_split_is_evaluated_whole(
    fashion_mnist: FashionMnist, trained: Arrays
) -> None:
    result = evaluate(trained, *fashion_mnist.split("train"))
    assert result.n_examples == 60_000
    assert result.confusion.sum(axis=1).tolist() == [6_000] * 10
    assert result.accuracy > 0.7


def test_a_class_without_examples_has_no_accuracy(
    fashion_mnist: FashionMnist, trained: Arrays
) -> None:
    images, labels = fashion_mnist.split("test")
    keep = labels != 9
    result = evaluate(trained, images[keep], labels[keep])
    assert result.per_class_accuracy[9] is None


def test_weights_of_the_wrong_shape_are_refused(fashion_mnist: FashionMnist) -> None:
    images, labels = fashion_mnist.split("test")
    with pytest.raises(IncompatibleWeightsError, match="'b'"):
        evaluate({"W": np.zeros((784, 10), np.float32)}, images, labels)
    with pytest.raises(IncompatibleWeightsError, match="'W' has shape"):
        predict_probabilities({"W": np.zeros(5), "b": np.zeros(10)}, images)


def test_probabilities_have_one_row_per_image_and_sum_to_one(
    fashion_mnist: FashionMnist, trained: Arrays
) -> None:
    images, labels = fashion_mnist.split("test")
    probabilities = predict_probabilities(trained, images)
    assert probabilities.shape == (10_000, 10)
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy == pytest.approx(evaluate(trained, images, labels).accuracy, abs=3e-4)


def test_extreme_weights_still_give_probabilities(fashion_mnist: FashionMnist) -> None:
    arrays = {"W": np.full((784, 10), 1e30, np.float32), "b": np.zeros(10, np.float32)}
    arrays["W"][:, 3] = 2e30
    probabilities = predict_probabilities(arrays, fashion_mnist.test_images[:5])
    assert np.isfinite(probabilities).all()


def test_sample_predictions_are_distinct_named_and_reproducible(
    fashion_mnist: FashionMnist, trained: Arrays
) -> None:
    predictions = sample_predictions(trained, fashion_mnist, n=3, seed=1)
    assert len({p.index for p in predictions}) == 3
    for prediction in predictions:
        assert prediction.true_class == fashion_mnist.test_labels[prediction.index]
        assert prediction.true_name == CLASS_NAMES[prediction.true_class]
        assert prediction.predicted_name == CLASS_NAMES[prediction.predicted_class]
        image = fashion_mnist.test_images[[prediction.index]]
        probabilities = predict_probabilities(trained, image)
        assert prediction.predicted_class == int(probabilities.argmax())
        assert prediction.probability == pytest.approx(float(probabilities.max()))
    assert sample_predictions(trained, fashion_mnist, n=3, seed=1) == predictions
