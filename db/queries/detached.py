"""Rows for reads that change nothing: objects of the model's class holding their columns, made
without the ORM's bookkeeping.

The ORM makes each row it loads an instance with an `InstanceState`, enters it in the session's
identity map and sets its attributes one by one: several microseconds a row, the largest cost
of a 100-video page with its jobs (600 rows) after the GraphQL work (issue 12). A query
operation only reads its rows, so its pages (`db.queries.pagination.fetch_pages` with
``detached=True``) select the same columns as plain values and make each row an object of the
model's class with the same attribute values. A column attribute reads them as it reads a
loaded instance's (`InstrumentedAttribute.__get__` looks in the instance's ``__dict__`` first),
so the GraphQL types, the cursors and the loaders see no difference.

Such an object belongs to no session: it is never added, refreshed, flushed or changed, and a
relationship attribute raises (`sqlalchemy.orm.exc.UnmappedInstanceError`) where a loaded
instance's ``lazy="raise"`` raises too. Reads that may be followed by writes in the same
session (mutations) keep the ORM's instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, inspect
from sqlalchemy.sql import FromClause

T = TypeVar("T")


@dataclass(frozen=True)
class DetachedColumns(Generic[T]):
    """The columns the ORM loads for ``model``, taken from a selectable that has them (a
    subquery of ``select(model)``), and the attribute each one sets."""

    model: type[T]
    columns: tuple[ColumnElement[Any], ...]
    keys: tuple[str, ...]
    id_index: int

    @classmethod
    def of(cls, model: type[T], selectable: FromClause) -> DetachedColumns[T]:
        columns: list[ColumnElement[Any]] = []
        keys: list[str] = []
        for prop in inspect(model).column_attrs:
            if prop.deferred:  # not loaded by the ORM either
                continue
            column = selectable.corresponding_column(prop.columns[0])
            if column is None:
                raise LookupError(f"{model.__name__}.{prop.key} is not a column of {selectable}")
            columns.append(column)
            keys.append(prop.key)
        return cls(model, tuple(columns), tuple(keys), keys.index("id"))

    def row(self, values: Sequence[Any]) -> T | None:
        """The row of ``values`` (in `columns`' order); None where an outer join found none."""
        if values[self.id_index] is None:
            return None
        row = self.model.__new__(self.model)
        row.__dict__.update(zip(self.keys, values, strict=True))
        return row
