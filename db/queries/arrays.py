"""Bind a list of ids as one array parameter: ``col = ANY($1::uuid[])``.

One parameter whatever the list's length keeps the statement text (and asyncpg's prepared
statement cache) the same for 1 id and for 100, where ``IN ($1, $2, …)`` would not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    SQLColumnExpression,
    Uuid,
    any_,
    bindparam,
    literal,
)
from sqlalchemy.dialects.postgresql import ARRAY


def uuid_array(ids: Sequence[uuid.UUID]) -> ColumnElement[Any]:
    return literal(list(ids), ARRAY(Uuid()))


def is_any_of(
    column: SQLColumnExpression[uuid.UUID], ids: Sequence[uuid.UUID]
) -> ColumnElement[bool]:
    return column == any_(uuid_array(ids))


def bound_ids(name: str) -> BindParameter[Any]:
    """A named placeholder for a list of ids (``ANY(:name)``), for statements built once
    (`db.queries.statements`)."""
    return bindparam(name, type_=ARRAY(Uuid()))
