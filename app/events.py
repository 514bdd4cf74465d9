"""The in-memory event hub of one API process: change events in, per-subscriber queues out.

`db.events.ChangeListener` feeds every change of the whole database into `EventHub.dispatch`;
each GraphQL subscription registers the topics it follows (one job, one video, or all jobs of
one owner) and reads a bounded queue of its own. Dispatch never waits: when a subscriber's queue
is full (a slow client), its events are dropped and it is told to resync — re-read the current
state, which supersedes whatever it missed. The same resync signal goes to every subscriber
after the listener reconnects (notifications sent while it was away are lost).
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from db.events import ChangeEvent, ChangeKind

DEFAULT_QUEUE_SIZE = 256

Topic = tuple[str, uuid.UUID]


def job_topic(job_id: uuid.UUID) -> Topic:
    """Changes of one job."""
    return ("job", job_id)


def video_topic(video_id: uuid.UUID) -> Topic:
    """Changes of one video (its row; not its jobs)."""
    return ("video", video_id)


def owner_jobs_topic(owner_id: uuid.UUID) -> Topic:
    """Changes of every job of one owner's videos."""
    return ("owner-jobs", owner_id)


class Resync(enum.Enum):
    """Events were lost (queue overflow, listener reconnect): re-read the current state."""

    RESYNC = "resync"


RESYNC: Final = Resync.RESYNC


class Subscriber:
    """One subscription's view of the hub: ``await next()`` gives the next event or `RESYNC`."""

    def __init__(self, topics: frozenset[Topic], queue_size: int) -> None:
        self.topics = topics
        self._queue: asyncio.Queue[ChangeEvent | Resync] = asyncio.Queue(maxsize=queue_size)
        self._resync = False

    @property
    def pending(self) -> int:
        """Queued items not read yet."""
        return self._queue.qsize()

    async def next(self) -> ChangeEvent | Resync:
        """The next event in commit order, or `RESYNC` when some were lost (the pending ones
        are dropped then: the state read after a resync supersedes them)."""
        if not self._resync:
            item = await self._queue.get()
            if item is not RESYNC and not self._resync:
                return item
        self._resync = False
        while not self._queue.empty():
            self._queue.get_nowait()
        return RESYNC

    def offer(self, event: ChangeEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.resync()

    def resync(self) -> None:
        self._resync = True
        # Wake a reader that waits on an empty queue; a full queue has no waiting reader, and
        # the flag is seen at its next read.
        if not self._queue.full():
            self._queue.put_nowait(RESYNC)


class EventHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._by_topic: dict[Topic, set[Subscriber]] = {}
        self._subscribers = 0

    @property
    def subscriber_count(self) -> int:
        """Subscriptions open right now (for metrics and tests)."""
        return self._subscribers

    @contextmanager
    def subscribe(self, *topics: Topic) -> Iterator[Subscriber]:
        """Follow ``topics`` until the block exits. Subscribe *before* reading the current
        state: an event that races the read is then queued, not lost."""
        subscriber = Subscriber(frozenset(topics), self.queue_size)
        for topic in subscriber.topics:
            self._by_topic.setdefault(topic, set()).add(subscriber)
        self._subscribers += 1
        try:
            yield subscriber
        finally:
            self._subscribers -= 1
            for topic in subscriber.topics:
                group = self._by_topic.get(topic)
                if group is not None:
                    group.discard(subscriber)
                    if not group:
                        del self._by_topic[topic]

    def dispatch(self, event: ChangeEvent) -> None:
        """Hand ``event`` to every subscriber of one of its topics (once each). Never blocks."""
        recipients: set[Subscriber] = set()
        for topic in _topics_of(event):
            recipients |= self._by_topic.get(topic, set())
        for subscriber in recipients:
            subscriber.offer(event)

    def resync_all(self) -> None:
        """Tell every subscriber to re-read the current state (the listener reconnected)."""
        for group in list(self._by_topic.values()):
            for subscriber in group:
                subscriber.resync()


def _topics_of(event: ChangeEvent) -> list[Topic]:
    if event.kind is ChangeKind.JOB:
        topics = [job_topic(event.id)]
        if event.owner_id is not None:
            topics.append(owner_jobs_topic(event.owner_id))
        return topics
    return [video_topic(event.id)]
