"""The training chunk is traced without AutoGraph (faster start) yet is the graph AutoGraph gave."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from worker.training import step
from worker.training.step import ChunkShape, chunk_function

STEPS = 20
BATCH = 32


def chunk_inputs(momentum: bool) -> tuple[Any, ...]:
    """A small chunk's arguments: random pixels and labels, zero weights, a constant rate."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(500, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, size=500, dtype=np.int32)
    params = tuple(
        tf.constant(rng.normal(size=shape).astype(np.float32))
        for shape in [(10, 784), (10,), (10, 784), (10,)]
    )
    indices = rng.integers(0, 500, size=(STEPS, BATCH), dtype=np.int32)
    return (
        tf.constant(images),
        tf.constant(labels),
        params,
        tf.constant(indices),
        tf.constant(np.full(STEPS, 0.05, np.float32)),
        tf.constant(STEPS - 3),
        tf.constant(1e-3),
        tf.constant(0.9 if momentum else 0.0),
    )


def graph_nodes(function: Any, arguments: tuple[Any, ...]) -> list[tuple[str, ...]]:
    """Every node of the traced graph and of its functions: name, op and inputs."""
    graph = function.get_concrete_function(*arguments).graph.as_graph_def()
    nodes = [(node.name, node.op, *node.input) for node in graph.node]
    for library_function in graph.library.function:
        nodes += [(node.name, node.op, *node.input) for node in library_function.node_def]
    return sorted(nodes)


@pytest.mark.parametrize("momentum", [False, True], ids=["sgd", "momentum"])
def test_the_chunk_without_autograph_is_autograph_s_graph_and_result(momentum: bool) -> None:
    import tensorflow as tf

    shape = ChunkShape("/CPU:0", BATCH, STEPS, momentum, xla=False)
    plain = chunk_function(shape)
    converted = tf.function(
        functools.partial(step._run_chunk, shape=shape), jit_compile=False, autograph=True
    )
    arguments = chunk_inputs(momentum)
    assert graph_nodes(plain, arguments) == graph_nodes(converted, arguments)
    ours, theirs = plain(*arguments), converted(*arguments)
    for mine, reference in zip([*ours[0], *ours[1:]], [*theirs[0], *theirs[1:]], strict=True):
        np.testing.assert_array_equal(mine.numpy(), reference.numpy())
    assert float(ours[1][STEPS - 4]) > 0 and float(ours[1][STEPS - 1]) == 0  # ran 17 steps
