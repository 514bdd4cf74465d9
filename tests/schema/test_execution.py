"""The executor's short path answers as graphql-core's own does: values, nulls, errors, paths."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry

from schema import StudioSchema
from schema.execution import StudioExecutor
from schema.plain_fields import plain_field
from schema.types.enums import JobStatus


def _fail(_root: Any, _info: object) -> str:
    raise ValueError("broken column")


@strawberry.type
class Item:
    label: str | None
    status: JobStatus
    name: str = plain_field(lambda item, _info: item.label)  # non-null: a None is an error
    broken: str | None = plain_field(_fail)
    count: int = plain_field(lambda item, _info: item.label)  # a str is no Int


@strawberry.type
class Box:
    items: list[Item]
    first: Item | None
    strict: Item = plain_field(lambda box, _info: box.first)


@strawberry.type
class Query:
    @strawberry.field
    def box(self) -> Box:
        items = [
            Item(label="a", status=JobStatus.QUEUED),
            Item(label=None, status=JobStatus.FAILED),
        ]
        return Box(items=items, first=None)


QUERIES = [
    "{ box { items { label status } first { label } } }",
    "{ box { items { name } } }",
    "{ box { items { label broken } } }",
    "{ box { items { count } } }",
    "{ box { strict { label } } }",
    "{ box { first { name } items { status label } } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_short_path_answers_as_graphql_core(query: str) -> None:
    short = StudioSchema(query=Query, execution_context_class=StudioExecutor)
    reference = StudioSchema(query=Query)
    got, want = await short.execute(query), await reference.execute(query)
    assert got.data == want.data
    assert [error.formatted for error in got.errors or ()] == [
        error.formatted for error in want.errors or ()
    ]
