"""The live-rows condition of soft delete is written once (`db.queries.live`), in the form the
partial indexes are built for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from db.models import User, Video, VoiceProfile
from db.models.base import SoftDelete
from db.queries.live import live

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", [User, Video, VoiceProfile])
def test_live_rows_are_those_whose_deleted_at_is_null(model: type[SoftDelete]) -> None:
    table = model.__tablename__  # type: ignore[attr-defined]
    sql = str(live(model))  # what `Where.of` names a statement by, too
    assert sql == f"{table}.deleted_at IS NULL"


def test_the_partial_indexes_are_built_for_that_condition() -> None:
    """PostgreSQL uses a partial index only for a query whose condition implies the index's:
    every partial index of a soft-deleted table is ``WHERE deleted_at IS NULL``."""
    predicates = {
        str(index.dialect_options["postgresql"]["where"])
        for model in (User, Video, VoiceProfile)
        for index in model.__table__.indexes  # type: ignore[attr-defined]
        if index.dialect_options["postgresql"]["where"] is not None
    }
    assert predicates == {"deleted_at IS NULL"}


def test_no_query_spells_the_condition_itself() -> None:
    """A read of live rows says ``live(Model)``: a second spelling (``deleted_at == None``, or
    ``IS NULL`` on another expression) could drift from the one the indexes match."""
    spelled = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in ("db", "app", "schema")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "db" / "queries" / "live.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.expr) and _is_null_test_of_deleted_at(node)
    ]
    assert spelled == []


def _is_null_test_of_deleted_at(node: ast.expr) -> bool:
    """``<x>.deleted_at.is_(None)``, or ``<x>.deleted_at == None`` (SQLAlchemy's other way)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        target = node.func.value
        return (
            node.func.attr == "is_"
            and isinstance(target, ast.Attribute)
            and target.attr == "deleted_at"
            and [ast.dump(arg) for arg in node.args] == [ast.dump(ast.Constant(None))]
        )
    if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
        return (
            node.left.attr == "deleted_at"
            and isinstance(node.ops[0], ast.Eq)
            and isinstance(node.comparators[0], ast.Constant)
            and node.comparators[0].value is None
        )
    return False
