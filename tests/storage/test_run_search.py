"""``Repository.query_runs``: the same queries give the same rows on SQLite and PostgreSQL.

Every test runs on both databases (the ``repo`` fixture); each expects exact ids, so a query
that answers differently on one of them fails there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from storage import InvalidValueError, QuerySyntaxError, Repository, parse_run_query
from storage.records import JobKind, RunStatus
from tests.storage.support import FakeClock


@dataclass(frozen=True)
class Seeded:
    """One run to store: its config, how it ended, its metrics and evaluations."""

    name: str | None
    config: dict[str, Any]
    status: RunStatus = RunStatus.SUCCEEDED
    summary: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    validation: tuple[tuple[int, float], ...] = ()  # (step, accuracy)
    evaluations: tuple[tuple[int, str, float], ...] = ()  # (checkpoint, split, accuracy)


def config(lr: float, batch_size: int = 128, **more: Any) -> dict[str, Any]:
    return {
        "learning_rate": lr,
        "batch_size": batch_size,
        "schedule": "constant",
        "dataset": "fashion-mnist",
        **more,
    }


def summary(accuracy: float | None, wall_s: float = 10.0, **more: Any) -> dict[str, Any]:
    return {"final_accuracy": accuracy, "final_loss": 0.5, "wall_s": wall_s, **more}


#: Run ids 1..8, created a day apart from 2030-01-01 12:00 UTC (run 1 first).
RUNS = (
    Seeded("baseline", config(0.01), summary=summary(0.80), tags={"team": "vision"}),
    Seeded(
        "Base-momentum",
        config(0.05, momentum=0.9, xla=True),
        summary=summary(0.83, wall_s=30.5),
        tags={"team": "nlp", "epochs": "3"},
        validation=((500, 0.70), (1000, 0.86)),
        evaluations=((1000, "test", 0.84),),
    ),
    Seeded(
        "wide_50%",
        config(0.2, 256, xla=False),
        summary=summary(0.79, pruned=True),
        validation=((1000, 0.81), (500, 0.90)),
        evaluations=((1000, "test", 0.82), (500, "test", 0.99), (1000, "val", 0.80)),
    ),
    Seeded("failed", config(1.0), status=RunStatus.FAILED, tags={"team": "vision"}),
    Seeded(None, config(0.001, 64, data_name="digits@2"), status=RunStatus.QUEUED),
    Seeded(
        "odd-types",
        {"learning_rate": "fast", "batch_size": 128, "xla": "yes", "schedule": 3},
        summary={"final_accuracy": "high"},
    ),
    Seeded("ünïcode", config(0.1), summary=summary(0.85), tags={"team": "Vision"}),
    Seeded(
        "cosine",
        config(0.1, schedule="cosine"),
        summary=summary(None),
        evaluations=((2000, "test", 0.90), (2000, "test", 0.91)),
    ),
)


def seed_runs(repository: Repository, clock: FakeClock) -> None:
    for seeded in RUNS:
        run = repository.create_run(
            kind=JobKind.TRAIN,
            config=seeded.config,
            seed=7,
            queue="train",
            max_attempts=1,
            name=seeded.name,
            tags=seeded.tags,
        )
        if seeded.status is not RunStatus.QUEUED:
            claimed = repository.claim_run(
                run.id, owner="test:1:a", worker_host="test", lease_ttl_s=600
            )
            assert claimed is not None
            for step, accuracy in seeded.validation:
                repository.record_validation(run.id, step, 0.5, accuracy)
            repository.finish_run(run.id, claimed.attempt, seeded.status, summary=seeded.summary)
        for step, split, accuracy in seeded.evaluations:
            repository.save_evaluation(
                run_id=run.id,
                checkpoint_step=step,
                split=split,
                loss=1 - accuracy,
                accuracy=accuracy,
                per_class_accuracy=[accuracy],
                confusion=[[1]],
            )
        clock.advance(86400)


@pytest.fixture
def seeded(repo: Repository, clock: FakeClock) -> Repository:
    seed_runs(repo, clock)
    return repo


def ids(repository: Repository, where: str | None = None, sort: str | None = None) -> list[int]:
    return [run.id for run in repository.query_runs(where, sort).runs]


#: (query, the ids it matches). One test runs them all: seeding costs more than a query.
QUERIES = [
    ("", [8, 7, 6, 5, 4, 3, 2, 1]),
    ("lr < 0.1", [5, 2, 1]),
    ("learning_rate >= 0.1 and learning_rate <= 0.2", [8, 7, 3]),
    ("lr = 0.1", [8, 7]),
    ("lr != 0.1", [5, 4, 3, 2, 1]),  # a run without a number for lr matches neither
    ("params.lr in (0.01, 1)", [4, 1]),
    ("lr not in (0.01, 1)", [8, 7, 5, 3, 2]),
    ("batch_size > 128", [3]),
    ("status = 'succeeded' and accuracy > 0.8", [7, 2]),
    ("status in ('failed', 'queued')", [5, 4]),
    ("status != 'succeeded'", [5, 4]),
    ("accuracy is null", [8, 6, 5, 4]),  # no summary, null, or not a number
    ("metrics.wall > 30", [2]),
    ("pruned = true", [3]),
    ("xla = true", [2]),
    ("xla = false", [3]),
    ("xla is null", [8, 7, 6, 5, 4, 1]),
    ("val_accuracy > 0.84", [2]),  # run 3's newest step is 1000 (0.81)
    ("val_accuracy is not null", [3, 2]),
    ("test_accuracy > 0.83", [8, 2]),  # run 3: newest checkpoint wins (0.82)
    ("eval.test.accuracy = 0.91", [8]),  # same checkpoint: the newer evaluation
    ("eval.val.accuracy is not null", [3]),
    ("tags.team = 'vision'", [4, 1]),
    ("tag.team != 'vision'", [7, 2]),
    ("tags.epochs = 3", [2]),
    ("tags.missing is null", [8, 7, 6, 5, 4, 3, 2, 1]),
    ("name like 'base%'", [2, 1]),  # case-insensitive on both databases
    ("name like '%\\_%'", [3]),  # \\ escapes the wildcard
    ("name like '%50\\%'", [3]),
    ("name not like 'base%'", [8, 7, 6, 4, 3]),  # a run without a name: neither
    ("name is null", [5]),
    ("name > 'f'", [7, 6, 4, 3]),  # by code point: 'ü' after 'w', 'B' before 'b'
    ("name = 'ünïcode'", [7]),
    ("data = 'digits@2'", [5]),
    ("data = 'fashion-mnist'", [8, 7, 4, 3, 2, 1]),
    ("data like 'digits@%' or data is null", [6, 5]),
    ("schedule = 'cosine'", [8]),
    ("id > 6 or id < 2", [8, 7, 1]),
    ("not (lr < 0.1 or status = 'failed')", [8, 7, 3]),
    ("lr < 0.1 or lr > 0.5 and status = 'failed'", [5, 4, 2, 1]),
    ("created = '2030-01-03'", [3]),
    ("created != '2030-01-03'", [8, 7, 6, 5, 4, 2, 1]),
    ("created >= '2030-01-06 12:00'", [8, 7, 6]),
    ("created > -3d", [8, 7]),  # now is 2030-01-09 12:00
    ("created < '2030-01-02T13:00:00+02:00'", [1]),
    ("finished is null", [5]),
    ("seed = 7 and sweep is null", [8, 7, 6, 5, 4, 3, 2, 1]),
    ("id < 99999999999999999999 and lr > -99999999999999999999", [8, 7, 5, 4, 3, 2, 1]),
]

#: (sort, the order of every run).
SORTS = [
    ("-accuracy", [7, 2, 1, 3, 8, 6, 5, 4]),  # missing values last, ties newest first
    ("accuracy", [3, 1, 2, 7, 8, 6, 5, 4]),
    ("-test_accuracy", [8, 2, 3, 7, 6, 5, 4, 1]),
    ("lr,-id", [5, 1, 2, 8, 7, 3, 4, 6]),
    ("-lr,id", [4, 3, 7, 8, 2, 1, 5, 6]),
    ("name", [2, 1, 8, 4, 6, 3, 7, 5]),  # by code point on both databases
    ("-created", [8, 7, 6, 5, 4, 3, 2, 1]),
    ("tags.team,id", [7, 2, 1, 4, 3, 5, 6, 8]),
    ("-xla", [2, 3, 8, 7, 6, 5, 4, 1]),
]


def test_queries_match_the_same_runs_on_both_databases(seeded: Repository) -> None:
    wrong = {where: got for where, expected in QUERIES if (got := ids(seeded, where)) != expected}
    assert wrong == {}


def test_sorts_give_the_same_order_on_both_databases(seeded: Repository) -> None:
    wrong = {sort: got for sort, expected in SORTS if (got := ids(seeded, None, sort)) != expected}
    assert wrong == {}


def test_pages_come_with_the_total(seeded: Repository) -> None:
    page = seeded.query_runs("lr < 0.5", "lr", limit=2, offset=0)
    assert ([run.id for run in page.runs], page.total) == ([5, 1], 6)
    page = seeded.query_runs("lr < 0.5", "lr", limit=2, offset=4)
    assert ([run.id for run in page.runs], page.total) == ([7, 3], 6)
    page = seeded.query_runs("lr < 0.5", "lr", limit=2, offset=10)
    assert (page.runs, page.total) == ((), 6)
    assert seeded.query_runs(limit=0).total == 8


def test_the_plain_filters_combine_with_the_query(seeded: Repository) -> None:
    page = seeded.query_runs(
        "lr < 0.5", statuses=[RunStatus.SUCCEEDED], tags={"team": "nlp"}, name="Base-momentum"
    )
    assert [run.id for run in page.runs] == [2]
    assert seeded.query_runs(sweep_id=3).total == 0


def test_archived_runs_are_hidden_unless_asked_for(seeded: Repository) -> None:
    seeded.archive_runs([1, 2])
    assert ids(seeded, "lr < 0.1") == [5]
    assert [run.id for run in seeded.query_runs("lr < 0.1", archived=True).runs] == [2, 1]
    assert [run.id for run in seeded.query_runs("lr < 0.1", archived=None).runs] == [5, 2, 1]
    assert ids(seeded, "archived is not null") == []  # the default hides them first
    assert seeded.query_runs("archived > -1d", archived=None).total == 2


def test_a_parsed_query_can_be_passed(seeded: Repository) -> None:
    assert seeded.query_runs(parse_run_query("lr = 0.01")).runs[0].id == 1


def test_bad_input_is_refused_before_reading(seeded: Repository) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        seeded.query_runs("val_acc > 0.8")
    assert raised.value.column == 1 and "val_accuracy" in raised.value.message
    with pytest.raises(QuerySyntaxError):
        seeded.query_runs(None, "-nope")
    with pytest.raises(InvalidValueError):
        seeded.query_runs(limit=-1)
    with pytest.raises(InvalidValueError):
        seeded.query_runs(offset=-1)
