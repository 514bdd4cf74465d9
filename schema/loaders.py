"""Per-request (and per-subscription-event) dataloaders: every relationship field goes through one.

A fresh `Loaders` is made for each operation and never shared between viewers, so its caches
cannot leak one user's rows to another. Every batch function calls a `db.queries` function that
filters by the viewer: a row the viewer may not see is simply missing (``None``). Connection
loaders are made per argument set (page size, cursor, filter, order), because one batch must
share them; ``totalCount`` has loaders of its own, run only when the field is asked for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.errors import Unauthenticated
from db import models
from db.queries import audit, jobs, users, videos, voice_profiles
from db.queries.pagination import PageRequest, PageSlice

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")
P = ParamSpec("P")


class OperationOver(Exception):
    """A loader batch asked for the database after its operation ended (`SessionGate.close`)."""


class OperationLoader(DataLoader[K, V]):
    """A `DataLoader` for the fields of one operation.

    Fields asking for the same key share one load. When graphql-core cancels a field (a sibling
    failed), only that field's wait is cancelled, never the load the others still wait for:
    each caller awaits a shield of it. `cancel_pending` gives up what is still unanswered once
    the operation is over, so nothing runs on for a response that has already left.

    A primed value becomes a cached future only when its key is first loaded: a page primes
    every row it read (a job's ``video`` among them then costs no statement), few of them are
    ever loaded, and a future for each cost more than reading the row's fields. The answers are
    `DataLoader.prime`'s: the first value given for a key, unless the key was loaded first.
    """

    def __init__(self, batch_load_fn: Callable[[list[K]], Awaitable[list[V]]]) -> None:
        super().__init__(batch_load_fn)  # type: ignore[arg-type]  # aiodataloader's own alias
        self._issued: dict[int, asyncio.Future[V]] = {}
        self._primed: dict[K, V] = {}

    def prime(self, key: K, value: V) -> OperationLoader[K, V]:
        if key not in self._cache:
            self._primed.setdefault(key, value)
        return self

    def clear(self, key: K) -> OperationLoader[K, V]:
        self._primed.pop(key, None)
        return super().clear(key)

    def clear_all(self) -> OperationLoader[K, V]:
        self._primed.clear()
        return super().clear_all()

    def load(self, key: K) -> asyncio.Future[V]:
        if self._primed and key in self._primed:
            super().prime(key, self._primed.pop(key))
        shared = super().load(key)
        self._issued[id(shared)] = shared
        return asyncio.shield(shared)

    def cancel_pending(self) -> None:
        for future in self._issued.values():
            if not future.done():
                future.cancel()
        self._issued.clear()

    def retire(self) -> None:
        """Used no more: its cached rows go, and so does its batch function (a closure over the
        `Loaders` that made it, which holds this loader: a cycle only the collector would free,
        after it had aged into the oldest generation) unless a load still waits for dispatch."""
        self.clear_all()
        self._issued.clear()
        if not self._queue:
            self.batch_load_fn = _retired


async def _retired(keys: list[Any]) -> list[Any]:
    raise OperationOver("the loader was replaced")


class SessionGate:
    """One `AsyncSession` shared by all loaders of an operation, used by one task at a time.

    aiodataloader dispatches each loader's batch as its own task, and an `AsyncSession` must not
    run two statements concurrently; the lock serializes them (the batches still collapse N
    lookups into one statement each).

    `close` ends the operation's use of the session before the session itself is closed: it
    gives up unanswered loads, waits for a statement in progress, and refuses any later one. A
    field cancelled because a sibling failed leaves its loader's batch scheduled; without this,
    the batch would run on the closed session after the response, which opens a transaction on
    a connection that nobody returns to the pool.

    A query operation's gate only reads (`reads_only`): each batch that finds its connection
    dead is run again, once, on a new one (the pool is not tested before every use:
    `db.engine`), and its statements may run without a transaction around them.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._start()

    def _start(self) -> None:
        self._lock = asyncio.Lock()
        self._closed = False
        self._loaders: list[OperationLoader[Any, Any]] = []
        self._reads_only = False
        self._autocommit = False

    @property
    def detached_rows(self) -> bool:
        """Whether pages may be read as `db.queries.detached` rows: the operation only reads,
        so no write in its session could want them as the session's own instances."""
        return self._reads_only

    def reads_only(self, *, autocommit: bool) -> None:
        """The operation only reads from now on. ``autocommit``: its statements run without
        ``BEGIN``/``ROLLBACK`` around them, each in a snapshot of its own, which is what READ
        COMMITTED gives statements inside a transaction too (behind a transaction pooler the
        statement timeout needs the transaction: ``SET LOCAL``)."""
        self._reads_only = True
        self._autocommit = autocommit

    def loader(
        self, batch_load_fn: Callable[[list[K]], Awaitable[list[V]]]
    ) -> OperationLoader[K, V]:
        """A loader whose unanswered loads `close` gives up."""
        made: OperationLoader[K, V] = OperationLoader(batch_load_fn)
        self._loaders.append(made)
        return made

    async def run(
        self,
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        async with self._lock:
            if self._closed:
                raise OperationOver("the operation is over")
            if not self._reads_only:
                return await fn(self.session, *args, **kwargs)
            if self._autocommit:
                self._autocommit = False
                await self._begin_autocommit()
            try:
                return await fn(self.session, *args, **kwargs)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
            # The pool has replaced its connections of that moment (SQLAlchemy does on a
            # disconnect); this one goes back too, and the batch runs on a new one.
            await self.session.rollback()
            return await fn(self.session, *args, **kwargs)

    async def _begin_autocommit(self) -> None:
        # Only on a session of its own that holds no connection yet (a test's session bound to
        # an outer transaction keeps that transaction).
        if isinstance(self.session.bind, AsyncEngine) and not self.session.in_transaction():
            await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    async def close(self) -> None:
        for loader in self._loaders:
            loader.cancel_pending()
        async with self._lock:  # the statement in progress, if any, ends first
            self._closed = True
        self._release_loaders()

    def retire_loaders(self) -> None:
        """Forget the loaders made so far: a new set replaces them (`Context.reset_loaders`).
        Their cached rows go now, and a subscription, which makes a new set for every change,
        does not keep every set it ever made (loads still running finish as they would)."""
        self._release_loaders()

    def _release_loaders(self) -> None:
        # A `Loaders` and its loaders refer to each other (each batch function is a closure over
        # the `Loaders`), so the rows in their caches would wait for the cyclic garbage
        # collector, and a large page's rows make each of its passes long. Emptied here, the
        # rows go with the response.
        for loader in self._loaders:
            loader.retire()
        self._loaders.clear()


class Loaders:
    def __init__(self, gate: SessionGate, viewer_id: uuid.UUID | None) -> None:
        self._gate = gate
        self._viewer_id = viewer_id
        self._keyed: dict[Hashable, DataLoader[Any, Any]] = {}

        self.user_by_id = self._by_key(users.users_by_ids)
        self.video_by_id = self._by_key(videos.videos_by_ids)
        self.voice_profile_by_id = self._by_key(voice_profiles.voice_profiles_by_ids)
        self.job_by_id = self._by_key(jobs.jobs_by_ids)
        self.latest_job_by_video = self._by_key(jobs.latest_for_videos)
        self.audit_event_by_id = self._by_key(audit.events_by_ids)

    @property
    def viewer_id(self) -> uuid.UUID:
        if self._viewer_id is None:
            raise Unauthenticated("Sign in to read this.")
        return self._viewer_id

    # --- connections ----------------------------------------------------------------------

    def videos_by_owner(
        self, video_filter: videos.VideoFilter, order: videos.VideoOrder, page: PageRequest
    ) -> DataLoader[uuid.UUID, PageSlice[models.Video]]:
        return self._keyed_loader(
            ("videos_by_owner", video_filter, order, page),
            lambda session, owner_ids: videos.list_for_owners(
                session,
                self._own(owner_ids),
                video_filter=video_filter,
                order=order,
                page=page,
                detached=self._gate.detached_rows,
            ),
        )

    def video_count_by_owner(self, video_filter: videos.VideoFilter) -> DataLoader[uuid.UUID, int]:
        return self._keyed_loader(
            ("video_count_by_owner", video_filter),
            lambda session, owner_ids: videos.count_for_owners(
                session, self._own(owner_ids), video_filter=video_filter
            ),
        )

    def voice_profiles_by_owner(
        self, page: PageRequest
    ) -> DataLoader[uuid.UUID, PageSlice[models.VoiceProfile]]:
        return self._keyed_loader(
            ("voice_profiles_by_owner", page),
            lambda session, owner_ids: voice_profiles.list_for_owners(
                session, self._own(owner_ids), page=page, detached=self._gate.detached_rows
            ),
        )

    def voice_profile_count_by_owner(self) -> DataLoader[uuid.UUID, int]:
        return self._keyed_loader(
            ("voice_profile_count_by_owner",),
            lambda session, owner_ids: voice_profiles.count_for_owners(
                session, self._own(owner_ids)
            ),
        )

    def jobs_by_video(
        self, page: PageRequest
    ) -> DataLoader[uuid.UUID, PageSlice[models.GenerationJob]]:
        return self._keyed_loader(
            ("jobs_by_video", page),
            lambda session, video_ids: jobs.list_for_videos(
                session, self.viewer_id, video_ids, page=page, detached=self._gate.detached_rows
            ),
        )

    def audit_events_by_actor(
        self, page: PageRequest
    ) -> DataLoader[uuid.UUID, PageSlice[models.AuditEvent]]:
        return self._keyed_loader(
            ("audit_events_by_actor", page),
            lambda session, actor_ids: audit.list_for_actors(
                session, self._own(actor_ids), page=page, detached=self._gate.detached_rows
            ),
        )

    def audit_event_count_by_actor(self) -> DataLoader[uuid.UUID, int]:
        return self._keyed_loader(
            ("audit_event_count_by_actor",),
            lambda session, actor_ids: audit.count_for_actors(session, self._own(actor_ids)),
        )

    def job_count_by_video(self) -> DataLoader[uuid.UUID, int]:
        return self._keyed_loader(
            ("job_count_by_video",),
            lambda session, video_ids: jobs.count_for_videos(session, self.viewer_id, video_ids),
        )

    # --- plumbing -------------------------------------------------------------------------

    def _own(self, owner_ids: Sequence[uuid.UUID]) -> Sequence[uuid.UUID]:
        """Owner-keyed lists are only ever asked for the viewer (the only user they can see)."""
        if any(owner_id != self.viewer_id for owner_id in owner_ids):
            raise PermissionError("an owner-keyed loader was asked for another user")
        return owner_ids

    def _by_key(
        self,
        fetch: Callable[
            [AsyncSession, uuid.UUID, Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, V]]
        ],
    ) -> DataLoader[uuid.UUID, V | None]:
        """A loader over a viewer-filtered ``fetch(session, viewer_id, keys)``."""

        async def batch(keys: list[uuid.UUID]) -> list[V | None]:
            found = await self._gate.run(fetch, self.viewer_id, keys)
            return [found.get(key) for key in keys]

        return self._gate.loader(batch)

    def _keyed_loader(
        self,
        cache_key: Hashable,
        fetch: Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, V]]],
    ) -> DataLoader[uuid.UUID, V]:
        loader = self._keyed.get(cache_key)
        if loader is None:

            async def batch(keys: list[uuid.UUID]) -> list[V]:
                found = await self._gate.run(fetch, keys)
                return [found[key] for key in keys]

            loader = self._gate.loader(batch)
            self._keyed[cache_key] = loader
        return loader
