"""The store's contract lists exactly what the repository offers, and says where each one lives.

mypy checks that the repository's signatures satisfy the contract (``storage.repository``); these
tests check the other direction (nothing offered but unlisted) and what mypy does not compare:
parameter names, kinds and defaults, and the pointer from each group to its code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from storage import Repository
from storage.store_contract import StoreContract


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name in dir(cls)
        if not name.startswith("_") and inspect.isfunction(inspect.getattr_static(cls, name))
    }


def _groups() -> list[type]:
    return [base for base in StoreContract.__bases__ if base.__name__.endswith("Operations")]


OPERATIONS = sorted(_public_methods(StoreContract))


def test_every_public_method_of_the_repository_is_in_the_contract() -> None:
    assert _public_methods(Repository) - set(OPERATIONS) == set()


def test_every_operation_of_the_contract_is_offered_by_the_repository() -> None:
    assert set(OPERATIONS) - _public_methods(Repository) == set()


def test_every_operation_belongs_to_exactly_one_group() -> None:
    listed = [name for group in _groups() for name in _public_methods(group)]
    assert sorted(listed) == OPERATIONS


def _parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [
        (parameter.name, parameter.kind, parameter.default)
        for parameter in inspect.signature(function).parameters.values()
    ]


@pytest.mark.parametrize("name", OPERATIONS)
def test_an_operation_takes_the_same_parameters_and_defaults_in_both(name: str) -> None:
    promised = getattr(StoreContract, name)
    offered = getattr(Repository, name)
    assert _parameters(promised) == _parameters(offered)


@pytest.mark.parametrize("name", OPERATIONS)
def test_an_operation_is_described_in_one_line(name: str) -> None:
    doc = inspect.getdoc(getattr(StoreContract, name))
    assert doc is not None, f"{name} has no docstring in the contract"
    assert len(doc.splitlines()) == 1, doc


@pytest.mark.parametrize("name", OPERATIONS)
def test_an_operations_group_names_the_module_that_holds_its_code(name: str) -> None:
    (group,) = [group for group in _groups() if name in vars(group)]
    module = inspect.getmodule(getattr(Repository, name))
    assert module is not None
    path = module.__name__.replace(".", "/") + ".py"
    assert f"``{path}``" in (group.__doc__ or ""), f"{group.__name__} should name {path}"
