"""Dataset versions in the store: added once under their content hash, found by name, number or
hash, read back chunk by chunk, and removed only when no run needs them (or on --force)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from storage import Repository
from storage.dataset_records import DatasetVersionRecord
from storage.errors import (
    DatasetNotFoundError,
    InvalidStateError,
    InvalidValueError,
)
from tests.storage.support import execute_sql, new_eval_job, new_run

CHUNK_BYTES = 1_000


def chunks_of(blob: bytes) -> list[tuple[int, bytes, str]]:
    """``blob`` cut as a version's chunks are: (index, bytes, SHA-256)."""
    pieces = [blob[start : start + CHUNK_BYTES] for start in range(0, len(blob), CHUNK_BYTES)]
    return [(index, piece, hashlib.sha256(piece).hexdigest()) for index, piece in enumerate(pieces)]


def add(
    repo: Repository, name: str, blob: bytes, **overrides: Any
) -> tuple[DatasetVersionRecord, bool]:
    """Store ``blob`` as a version of ``name`` (a 2-class, 3-feature table unless overridden)."""
    arguments: dict[str, Any] = {
        "name": name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "feature_kind": "float32",
        "features": 3,
        "classes": 2,
        "train_examples": 10,
        "test_examples": 0,
        "class_names": ("no", "yes"),
        "size_bytes": len(blob),
        "source": {"format": "csv", "files": {"train": ["table.csv"]}},
        "chunks": chunks_of(blob),
    }
    arguments.update(overrides)
    return repo.add_dataset_version(**arguments)


BLOB = bytes(range(256)) * 10  # 2,560 bytes: three chunks, the last one short


def test_a_version_reads_back_as_its_chunks_in_order(repo: Repository) -> None:
    version, created = add(repo, "table", BLOB)

    assert created
    assert version.label == "table@1"
    assert version.short_hash == hashlib.sha256(BLOB).hexdigest()[:12]
    assert (version.chunk_count, version.size_bytes) == (3, len(BLOB))
    assert version.class_names == ("no", "yes")
    assert version.source == {"format": "csv", "files": {"train": ["table.csv"]}}
    stored = repo.read_dataset_chunks(version.sha256)
    assert stored == chunks_of(BLOB)
    assert repo.get_dataset_version(version.sha256) == version


def test_the_same_data_added_again_is_the_same_version_and_nothing_is_read(
    repo: Repository,
) -> None:
    first, _ = add(repo, "table", BLOB)

    def never_read() -> Iterator[tuple[int, bytes, str]]:
        raise AssertionError("the chunks of a version already stored must not be read")
        yield  # pragma: no cover

    again, created = add(repo, "other-name", BLOB, chunks=never_read())

    assert not created
    assert again == first
    assert [v.label for v in repo.list_dataset_versions()] == ["table@1"]


def test_versions_are_numbered_per_name_in_the_order_they_were_added(repo: Repository) -> None:
    add(repo, "table", b"first" * 300)
    add(repo, "images", b"other" * 300)
    newest, _ = add(repo, "table", b"second" * 300)

    assert newest.label == "table@2"
    assert [v.label for v in repo.list_dataset_versions()] == ["images@1", "table@1", "table@2"]
    assert [v.label for v in repo.list_dataset_versions("table")] == ["table@1", "table@2"]


def test_a_version_is_found_by_name_number_or_hash(repo: Repository) -> None:
    first, _ = add(repo, "table", b"first" * 300)
    second, _ = add(repo, "table", b"second" * 300)

    assert repo.find_dataset_version("table") == second  # the newest
    assert repo.find_dataset_version("table@1") == first
    assert repo.find_dataset_version(first.short_hash) == first
    assert repo.find_dataset_version(first.sha256[:8].upper()) == first
    assert repo.find_dataset_version(second.sha256) == second


def test_a_reference_to_nothing_says_what_is_stored(repo: Repository) -> None:
    add(repo, "table", b"first" * 300)
    add(repo, "table", b"second" * 300)

    with pytest.raises(DatasetNotFoundError, match=r"table has no version 7; .* table@1, table@2"):
        repo.find_dataset_version("table@7")
    with pytest.raises(
        DatasetNotFoundError, match=r"no dataset named 'tabel'; .*table \(2 versions\)"
    ):
        repo.find_dataset_version("tabel")
    with pytest.raises(
        DatasetNotFoundError, match="no dataset version's hash starts with 00000000"
    ):
        repo.find_dataset_version("00000000")
    with pytest.raises(InvalidValueError, match="NAME, NAME@N or a content hash"):
        repo.find_dataset_version("../etc/passwd")


def test_an_empty_store_says_how_to_add_a_dataset(repo: Repository) -> None:
    with pytest.raises(DatasetNotFoundError, match="trainq data add NAME PATH"):
        repo.find_dataset_version("fashion-mnist")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda c: [c[0], (1, c[1][1], hashlib.sha256(b"x").hexdigest()), c[2]],
            "chunk 1 does not",
        ),
        (lambda c: [c[0], c[2]], "chunk 2 given where chunk 1 belongs"),
        (lambda c: c[:2], "do not|not to the content hash"),
    ],
    ids=["a chunk failing its checksum", "a chunk missing", "the last chunk missing"],
)
def test_chunks_that_are_not_what_they_claim_store_nothing(
    repo: Repository, damage: Any, message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        add(repo, "table", BLOB, chunks=damage(chunks_of(BLOB)))

    assert repo.list_dataset_versions() == []
    assert execute_sql(repo._db, "SELECT count(*) FROM dataset_chunks") == [(0,)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "a/b"}, "dataset name 'a/b'"),
        ({"name": "deadbeef00"}, "reads as a content hash"),
        ({"feature_kind": "int64"}, "feature_kind"),
        ({"classes": 1}, "classes 1"),
        ({"class_names": ("only one",)}, "1 class names for 2 classes"),
        ({"size_bytes": 5}, "not size_bytes=5"),
        ({"sha256": "abc"}, "not a SHA-256"),
    ],
)
def test_bad_metadata_stores_nothing(
    repo: Repository, overrides: dict[str, Any], message: str
) -> None:
    given = dict(overrides)
    name = given.pop("name", "table")
    with pytest.raises(InvalidValueError, match=message):
        add(repo, name, BLOB, **given)
    assert repo.list_dataset_versions() == []


def test_a_run_records_its_dataset_and_is_listed_by_it(repo: Repository) -> None:
    version, _ = add(repo, "table", BLOB)
    other, _ = add(repo, "table", b"second" * 300)
    on_it = new_run(repo, config={"steps": 10, "data_sha256": version.sha256})
    new_run(repo, config={"steps": 10, "data_sha256": other.sha256})
    new_run(repo)  # the built-in Fashion-MNIST

    assert on_it.data_sha256 == version.sha256
    assert [run.id for run in repo.list_runs(data_sha256=[version.sha256])] == [on_it.id]
    assert len(repo.list_runs(data_sha256=[version.sha256, other.sha256])) == 2
    assert repo.list_runs(data_sha256=[]) == []


def test_a_run_cannot_name_a_version_that_is_not_stored(repo: Repository) -> None:
    with pytest.raises(
        DatasetNotFoundError, match="never added to this cluster, or it was removed"
    ):
        new_run(repo, config={"steps": 10, "data_sha256": "ab" * 32})
    with pytest.raises(InvalidValueError, match="data_sha256"):
        new_run(repo, config={"steps": 10, "data_sha256": "not a hash"})
    assert repo.list_runs() == []


def test_a_version_in_use_is_not_removed_without_force(repo: Repository) -> None:
    version, _ = add(repo, "table", BLOB)
    run = new_run(repo, config={"steps": 10, "data_sha256": version.sha256})
    job = new_eval_job(repo, run.id)

    with pytest.raises(
        InvalidStateError, match=r"table@1 .* used by 1 run \(1\), 1 evaluation job"
    ):
        repo.delete_dataset_version(version.sha256, force=False)

    assert repo.read_dataset_chunks(version.sha256) == chunks_of(BLOB)
    usage = repo.dataset_usage(version.sha256)
    assert (usage.run_ids, usage.evaluation_job_ids) == ((run.id,), (job.id,))


def test_force_removes_a_version_and_its_runs_stay(repo: Repository) -> None:
    version, _ = add(repo, "table", BLOB)
    run = new_run(repo, config={"steps": 10, "data_sha256": version.sha256})

    usage = repo.delete_dataset_version(version.sha256, force=True)

    assert usage.run_ids == (run.id,)
    assert repo.get_run(run.id).data_sha256 == version.sha256
    assert repo.list_dataset_versions() == []
    assert execute_sql(repo._db, "SELECT count(*) FROM dataset_chunks") == [(0,)]
    with pytest.raises(DatasetNotFoundError):
        repo.read_dataset_chunks(version.sha256)


def test_an_unused_version_is_removed_and_its_number_is_not_reused(repo: Repository) -> None:
    first, _ = add(repo, "table", BLOB)
    second, _ = add(repo, "table", b"second" * 300)

    assert not repo.delete_dataset_version(second.sha256, force=False).in_use
    third, _ = add(repo, "table", b"third" * 300)

    assert [v.label for v in repo.list_dataset_versions()] == ["table@1", "table@2"]
    assert third.version == 2  # the newest number + 1: a removed newest number comes back
    with pytest.raises(DatasetNotFoundError):
        repo.delete_dataset_version(second.sha256, force=True)
    assert first.version == 1
