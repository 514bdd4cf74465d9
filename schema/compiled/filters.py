"""`videos(filter:)` in SQL: the conditions of `db.queries.videos._video_conditions`.

Which of the filter's fields are given shapes the statement (the plan key holds it); their
values are bound: statuses and the input type by name, times as `_in_utc` makes them, the
search as the prefix ``tsquery`` of `search_query` (NULL when the text has no word, which
matches nothing, as the resolver's ``false()`` does), against the model's own search document
so that the ``ix_videos_search`` index still applies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql

from db.models.video import search_document
from db.queries.videos import _in_utc, search_query
from schema.compiled.sql import Fallback
from schema.types.video import MAX_SEARCH_LENGTH

_DOCUMENT = str(
    search_document(literal_column("{c}.title"), literal_column("{c}.description")).compile(
        dialect=postgresql.dialect()  # type: ignore[no-untyped-call]
    )
)


def video_filter_sql(given: dict[str, Any] | None, n: int) -> str:
    """The filter's conditions on alias ``{c}``, each after an ``AND``; "" for none."""
    if given is None:
        return ""
    conditions = []
    if given.get("status"):
        conditions.append(f"{{c}}.status::text = ANY(CAST(:fs{n} AS text[]))")
    if given.get("inputType") is not None:
        conditions.append(f"{{c}}.input_type::text = CAST(:fi{n} AS text)")
    if given.get("createdAfter") is not None:
        conditions.append(f"{{c}}.created_at >= CAST(:fa{n} AS timestamptz)")
    if given.get("createdBefore") is not None:
        conditions.append(f"{{c}}.created_at < CAST(:fb{n} AS timestamptz)")
    if given.get("search") is not None:
        conditions.append(
            f"CAST(:fq{n} AS text) IS NOT NULL"
            f" AND {_DOCUMENT} @@ to_tsquery('simple', CAST(:fq{n} AS text))"
        )
    return "".join(f" AND {condition}" for condition in conditions)


def video_filter_params(given: dict[str, Any] | None, n: int) -> dict[str, Any]:
    """This request's values for `video_filter_sql`; `Fallback` where `VideoFilter.to_query`
    refuses them (a search longer than its limit)."""
    if given is None:
        return {}
    params: dict[str, Any] = {}
    if given.get("status"):
        params[f"fs{n}"] = [status.value for status in dict.fromkeys(given["status"])]
    if given.get("inputType") is not None:
        params[f"fi{n}"] = given["inputType"].value
    if given.get("createdAfter") is not None:
        params[f"fa{n}"] = _in_utc(given["createdAfter"])
    if given.get("createdBefore") is not None:
        params[f"fb{n}"] = _in_utc(given["createdBefore"])
    search = given.get("search")
    if search is not None:
        if len(search) > MAX_SEARCH_LENGTH:
            raise Fallback("search too long")
        params[f"fq{n}"] = search_query(search)
    return params
