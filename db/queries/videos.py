from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, Uuid, any_, bindparam, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import JobStatus, Video, VideoInputType, VideoStatus
from db.models.video import search_document
from db.queries.arrays import bound_ids
from db.queries.live import live
from db.queries.pagination import (
    Ordering,
    PageRequest,
    PageSlice,
    Where,
    count_for_parents,
    fetch_pages,
)

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


async def get_video(
    session: AsyncSession, owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool = False
) -> Video | None:
    """The owner's video; ``deleted=True`` looks among the soft-deleted ones instead."""
    return await session.scalar(owned_video(owner_id, video_id, deleted=deleted))


@dataclass(frozen=True)
class VideoFilter:
    """The list filters of SPEC ``VideoFilter``; every field optional, all of them ANDed."""

    statuses: tuple[VideoStatus, ...] = ()
    search: str | None = None
    input_type: VideoInputType | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


VIDEO_ORDER_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "CREATED_AT": Video.created_at,
    "UPDATED_AT": Video.updated_at,
    "TITLE": Video.title,
}


@dataclass(frozen=True)
class VideoOrder:
    """SPEC ``VideoOrder``: a key of `VIDEO_ORDER_COLUMNS` and a direction (id breaks ties)."""

    field: str = "CREATED_AT"
    descending: bool = True

    def ordering(self) -> Ordering:
        return Ordering(VIDEO_ORDER_COLUMNS[self.field], descending=self.descending)


async def videos_by_ids(
    session: AsyncSession, owner_id: uuid.UUID, video_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Video]:
    """The owner's live videos among ``video_ids``; others' and deleted ones are simply absent."""
    rows = await session.scalars(_VIDEOS_BY_IDS, {"owner_id": owner_id, "ids": list(video_ids)})
    return {video.id: video for video in rows}


async def list_for_owners(
    session: AsyncSession,
    owner_ids: Sequence[uuid.UUID],
    *,
    video_filter: VideoFilter,
    order: VideoOrder,
    page: PageRequest,
    detached: bool = False,
) -> dict[uuid.UUID, PageSlice[Video]]:
    """A page of each owner's videos, in one statement (see `db.queries.pagination`;
    ``detached``: see `fetch_pages`)."""
    return await fetch_pages(
        session,
        Video,
        Video.user_id,
        owner_ids,
        where=_video_where(video_filter),
        ordering=order.ordering(),
        page=page,
        detached=detached,
    )


async def count_for_owners(
    session: AsyncSession, owner_ids: Sequence[uuid.UUID], *, video_filter: VideoFilter
) -> dict[uuid.UUID, int]:
    return await count_for_parents(
        session, Video.user_id, owner_ids, where=_video_where(video_filter)
    )


def search_query(text_: str) -> str | None:
    """A prefix ``tsquery`` for free text: every word must start a word of title/description;
    None when the text has no word at all.

    Words are reduced to letters and digits, so no ``tsquery`` syntax from the client survives.
    """
    words = re.findall(r"\w+", text_.lower())[:_MAX_SEARCH_WORDS]
    return " & ".join(f"{word}:*" for word in words) or None


_MAX_SEARCH_WORDS = 8


def _video_where(video_filter: VideoFilter) -> Where:
    """The filter's conditions, by which of them are given (and whether a search has words)."""
    values: dict[str, Any] = {}
    if video_filter.statuses:
        values["filter_statuses"] = list(video_filter.statuses)
    if video_filter.input_type is not None:
        values["filter_input_type"] = video_filter.input_type
    if video_filter.created_after is not None:
        values["filter_created_after"] = _in_utc(video_filter.created_after)
    if video_filter.created_before is not None:
        values["filter_created_before"] = _in_utc(video_filter.created_before)
    searching = video_filter.search is not None
    if video_filter.search is not None:
        query = search_query(video_filter.search)
        if query is not None:
            values["filter_search"] = query
    shape = ("videos", frozenset(values), searching)
    return Where(shape, lambda: _video_conditions(frozenset(values), searching), values)


def _video_conditions(given: frozenset[str], searching: bool) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [live(Video)]
    if "filter_statuses" in given:
        conditions.append(Video.status.in_(bindparam("filter_statuses", expanding=True)))
    if "filter_input_type" in given:
        conditions.append(Video.input_type == bindparam("filter_input_type"))
    if "filter_created_after" in given:
        conditions.append(Video.created_at >= bindparam("filter_created_after"))
    if "filter_created_before" in given:
        conditions.append(Video.created_at < bindparam("filter_created_before"))
    if searching:
        conditions.append(_matches_search("filter_search" in given))
    return conditions


def _matches_search(has_words: bool) -> ColumnElement[bool]:
    if not has_words:
        # Nothing to look for ("%", "   ", punctuation): a search that matches no video, not a
        # filter that went missing.
        return false()
    # Matches the GIN index ix_videos_search (same expression, same 'simple' dictionary).
    document = search_document(Video.title, Video.description)
    query = bindparam("filter_search", type_=String())
    return document.bool_op("@@")(func.to_tsquery("simple", query))


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, as asyncpg sends it. A time near the ends of the range, such as
    0001-01-01T00:00+14:00, has no UTC form (asyncpg would raise OverflowError): it becomes the
    end it falls past, beyond which there are no rows either, so the filter keeps its meaning."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == datetime.min.year else datetime.max).replace(
            tzinfo=UTC
        )


# Built once, run with their values (`db.queries.statements`).
_VIDEOS_BY_IDS = select(Video).where(
    Video.id == any_(bound_ids("ids")),
    Video.user_id == bindparam("owner_id", type_=Uuid()),
    live(Video),
)


def owned_video(owner_id: uuid.UUID, video_id: uuid.UUID, *, deleted: bool) -> Select[Video]:
    deleted_filter = Video.deleted_at.is_not(None) if deleted else live(Video)
    return select(Video).where(Video.id == video_id, Video.user_id == owner_id, deleted_filter)
