"""The one condition that picks a soft-deleted table's live rows: ``<table>.deleted_at IS NULL``.

Every read that hides deleted rows says it with `live`, so the predicate has one form: the
partial indexes (``postgresql_where=text("deleted_at IS NULL")`` in `db.models`) are only used by
a query whose condition implies theirs, and `db.queries.pagination.Where.of` names a cached
statement by the condition's SQL text.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from db.models.base import SoftDelete


def live(model: type[SoftDelete]) -> ColumnElement[bool]:
    """``model``'s rows that are not soft-deleted (`db.models.base.SoftDelete`)."""
    return model.deleted_at.is_(None)
