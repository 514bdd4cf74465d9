"""``type Subscription`` (SPEC §4, §5 Live progress): job and video state as it changes.

Every subscription follows the same steps:

1. register with the process's `EventHub` *before* reading anything, so that a change committed
   while the current state is read is queued, not lost;
2. read the current state through the viewer's loaders (someone else's id is ``NOT_FOUND``) and
   send it;
3. for every change event whose ``version`` is newer than the last state sent, re-read the row
   with fresh loaders (each batch in a short session: nothing is held while waiting) and send it
   if it is newer, after the row's status (and stage) changes in between, read from its history
   (`db.models.state_change`). Versions only grow, so nothing is sent twice or out of order;
   progress that changes faster than a subscriber re-reads it coalesces into the newest state,
   but no status or stage is skipped. A subscription given ``afterVersion`` (the last version a
   client saw before it reconnected) first sends the status changes since that version.
4. On a resync (the listener reconnected after a database restart, or the subscriber fell behind)
   re-read the same way: whatever changed while events were lost is sent then. A re-read that
   fails because the database is unreachable is retried every second, not fatal.

``jobProgress`` ends after sending a terminal state (SUCCEEDED, FAILED, CANCELLED).
``videoUpdated`` ends with ``NOT_FOUND`` once the video is deleted (deleted videos are invisible,
and a restored one can be subscribed to again). ``viewerJobs`` runs until the client stops it.
Each ends with ``UNAUTHENTICATED`` when the connection's access token expires; the connection
then closes with 4403 "Token expired" once its operations have said so
(`schema.transport.websocket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Protocol, TypeVar

import strawberry
from aiodataloader import DataLoader
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import BadUserInput, NotFound, Unauthenticated
from app.events import (
    RESYNC,
    EventHub,
    Subscriber,
    job_topic,
    owner_jobs_topic,
    video_topic,
)
from app.state import AppState
from db import models
from db.events import ChangeEvent
from db.queries import changes
from schema.change_reads import ChangeReads
from schema.context import Info
from schema.loaders import Loaders
from schema.queries import load_node
from schema.relay import from_global_id
from schema.transport.streaming import TOKEN_EXPIRED
from schema.types.generation_job import GenerationJob
from schema.types.video import Video

logger = logging.getLogger(__name__)

TERMINAL_JOB_STATUSES = frozenset(
    {models.JobStatus.SUCCEEDED, models.JobStatus.FAILED, models.JobStatus.CANCELLED}
)
#: A viewerJobs resync looks this far back before the previous one (transactions in flight
#: across it); rows already sent are skipped by version.
RESYNC_OVERLAP = timedelta(seconds=30)
READ_RETRY_SECONDS = 1.0
#: The subscriptions that send the current state first; a subscriber who joins one of them
#: while it is shared gets its newest state first (`schema.transport.feeds`).
STARTS_WITH_CURRENT_STATE = frozenset({"jobProgress", "videoUpdated"})

T = TypeVar("T")
R = TypeVar("R")


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=_Versioned)


class _Unavailable(enum.Enum):
    UNAVAILABLE = "unavailable"


UNAVAILABLE: Literal[_Unavailable.UNAVAILABLE] = _Unavailable.UNAVAILABLE


_AFTER_VERSION = strawberry.argument(
    description="The last `version` the client saw (on a reconnect): the status changes since "
    "then come first, in order, then the current state."
)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The job's current state, then every change; ends after a terminal state."
    )
    async def job_progress(
        self,
        info: Info,
        job_id: strawberry.ID,
        after_version: Annotated[int | None, _AFTER_VERSION] = None,
    ) -> AsyncGenerator[GenerationJob, None]:
        await info.context.require_viewer()
        _, row_id = from_global_id(job_id, expected="GenerationJob", field="jobId")
        after = _after(after_version)
        with _hub(info).subscribe(job_topic(row_id)) as subscriber:
            node = await load_node(info, job_id, expected="GenerationJob")
            assert isinstance(node, GenerationJob)
            states = _follow(
                _Changes(info, subscriber),
                node.row,
                _job_reader(info, row_id),
                _history(info, changes.job_states_between, row_id),
                gone=f"Job {job_id} is gone (its video was deleted).",
                after=after,
            )
            async with contextlib.aclosing(states):
                async for row in states:
                    yield GenerationJob(row=row)
                    if row.status in TERMINAL_JOB_STATUSES:
                        return

    @strawberry.subscription(
        description="The video's current state, then every change; ends (NOT_FOUND) when the "
        "video is deleted."
    )
    async def video_updated(
        self,
        info: Info,
        video_id: strawberry.ID,
        after_version: Annotated[int | None, _AFTER_VERSION] = None,
    ) -> AsyncGenerator[Video, None]:
        await info.context.require_viewer()
        _, row_id = from_global_id(video_id, expected="Video", field="videoId")
        after = _after(after_version)
        with _hub(info).subscribe(video_topic(row_id)) as subscriber:
            node = await load_node(info, video_id, expected="Video")
            assert isinstance(node, Video)
            states = _follow(
                _Changes(info, subscriber),
                node.row,
                _video_reader(info, row_id),
                _history(info, changes.video_states_between, row_id),
                gone=f"Video {video_id} was deleted.",
                after=after,
            )
            async with contextlib.aclosing(states):
                async for row in states:
                    yield Video(row=row)

    @strawberry.subscription(description="Every change to any of the viewer's jobs.")
    async def viewer_jobs(self, info: Info) -> AsyncGenerator[GenerationJob, None]:
        viewer = await info.context.require_viewer()
        gate = info.context.gate
        sent: dict[uuid.UUID, int] = {}  # job id -> last version sent
        with _hub(info).subscribe(owner_jobs_topic(viewer.user_id)) as subscriber:
            since = await gate.run(changes.database_time)
            changed = _Changes(info, subscriber)

            async def changed_since() -> tuple[datetime, Sequence[models.GenerationJob]]:
                now = await gate.run(changes.database_time)
                return now, await gate.run(changes.jobs_changed_since, viewer.user_id, since)

            while True:
                change = await changed.next()
                rows: Sequence[models.GenerationJob]
                if change is None:  # events may be lost: read what changed lately
                    result = await changed.reread(changed_since)
                    if result is UNAVAILABLE:
                        continue
                    now, rows = result
                    since = max(since, now - RESYNC_OVERLAP)
                elif change.version > sent.get(change.id, 0):
                    row = await changed.reread(_job_reader(info, change.id))
                    if row is UNAVAILABLE or row is None:  # None: its video was deleted
                        continue
                    # The status changes since the last state sent, or else since this change
                    # (a job not sent yet changed before it only before we looked).
                    history = _history(info, changes.job_states_between, change.id)
                    after = sent.get(change.id, change.version - 1)
                    states = await _since(changed, history, after, row)
                    rows = [row] if states is UNAVAILABLE else states
                else:
                    continue
                for job in rows:
                    if job.version > sent.get(job.id, 0):
                        sent[job.id] = job.version
                        info.context.reset_loaders()
                        yield GenerationJob(row=job)


async def _follow(
    changed: _Changes,
    first: V,
    read: Callable[[], Awaitable[V | None]],
    missed: Callable[[int, int], Awaitable[Sequence[V]]],
    *,
    gone: str,
    after: int | None,
) -> AsyncGenerator[V, None]:
    """``first`` (after the status changes since version ``after``, when given), then each newer
    state of the same row; every status change between two states sent is sent too, in order
    (``missed``). `NotFound` (``gone``) once the viewer can no longer see it."""
    last = first.version
    if after is not None and after < last:
        for state in await missed(after, last):
            yield state
    yield first
    while True:
        change = await changed.next()
        if change is not None and change.version <= last:
            continue  # already sent (a duplicate, or older than a state read since)
        row = await changed.reread(read)
        if row is UNAVAILABLE:
            continue
        if row is None:
            raise NotFound(gone)
        if row.version > last:
            states = await _since(changed, missed, last, row)
            if states is UNAVAILABLE:
                continue  # retried: nothing is sent until the states between can be read
            for state in states:
                yield state
            last = row.version


async def _since(
    changed: _Changes,
    missed: Callable[[int, int], Awaitable[Sequence[V]]],
    after: int,
    row: V,
) -> list[V] | Literal[_Unavailable.UNAVAILABLE]:
    """The status changes recorded after version ``after`` and before ``row``, then ``row``:
    what a subscriber that last sent ``after`` sends now. The history is read only when
    versions were skipped (`UNAVAILABLE` when it cannot be read now)."""
    if row.version <= after + 1:
        return [row]
    states = await changed.reread(functools.partial(missed, after, row.version))
    return UNAVAILABLE if states is UNAVAILABLE else [*states, row]


class _Changes:
    """When a subscription must look again: a change event, or ``None`` for "re-read all you
    follow" (a resync, or a retry after a re-read failed on an unreachable database)."""

    def __init__(self, info: Info, subscriber: Subscriber) -> None:
        self.info = info
        self.subscriber = subscriber
        self.retrying = False

    async def next(self) -> ChangeEvent | None:
        """`Unauthenticated` once the connection's access token expires."""
        viewer = self.info.context.viewer
        assert viewer is not None
        remaining = (viewer.expires_at - datetime.now(UTC)).total_seconds()
        wait = min(remaining, READ_RETRY_SECONDS) if self.retrying else remaining
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    change = await self.subscriber.next()
                    return None if change is RESYNC else change
            if wait < remaining:
                return None  # time to retry the failed read
        raise Unauthenticated(TOKEN_EXPIRED)

    async def reread(
        self, read: Callable[[], Awaitable[T]]
    ) -> T | Literal[_Unavailable.UNAVAILABLE]:
        """``read()`` with fresh loaders; `UNAVAILABLE` (to be retried) if the database cannot
        be reached."""
        self.info.context.reset_loaders()
        try:
            result = await read()
        except (DBAPIError, OSError, PoolTimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not (
                exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
            ):
                raise
            logger.warning("subscription re-read failed (%s); retrying", type(exc).__name__)
            self.retrying = True
            return UNAVAILABLE
        self.retrying = False
        return result


def _job_reader(
    info: Info, job_id: uuid.UUID
) -> Callable[[], Awaitable[models.GenerationJob | None]]:
    return _reader(info, job_id, lambda loaders: loaders.job_by_id, ChangeReads.job)


def _video_reader(info: Info, video_id: uuid.UUID) -> Callable[[], Awaitable[models.Video | None]]:
    return _reader(info, video_id, lambda loaders: loaders.video_by_id, ChangeReads.video)


def _reader(
    info: Info,
    row_id: uuid.UUID,
    loader: Callable[[Loaders], DataLoader[uuid.UUID, R | None]],
    batched: Callable[[ChangeReads, uuid.UUID, uuid.UUID], Awaitable[R | None]],
) -> Callable[[], Awaitable[R | None]]:
    """Reads the row as the viewer may see it now: batched with other feeds' re-reads in a
    shared run (`schema.change_reads`), else through the viewer's loaders."""

    async def read() -> R | None:
        # Looks the loaders up when called: `_Changes.reread` has just replaced them.
        context = info.context
        if context.change_reads is None:
            return await loader(context.loaders).load(row_id)
        return await batched(context.change_reads, context.loaders.viewer_id, row_id)

    return read


def _history(
    info: Info,
    states_between: Callable[[AsyncSession, uuid.UUID, int, int], Awaitable[Sequence[V]]],
    row_id: uuid.UUID,
) -> Callable[[int, int], Awaitable[Sequence[V]]]:
    """The row's status changes with a version between two others (`db.models.state_change`)."""
    return lambda after, before: info.context.gate.run(states_between, row_id, after, before)


def _after(after_version: int | None) -> int | None:
    if after_version is not None and after_version < 0:
        raise BadUserInput(
            "`afterVersion` is a version the client saw: 0 or more.", field="afterVersion"
        )
    return after_version


def _hub(info: Info) -> EventHub:
    request = info.context.request
    assert request is not None
    return AppState.of(request).events
