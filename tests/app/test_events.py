"""The in-memory event hub: topics, per-subscriber order, and resync instead of blocking."""

from __future__ import annotations

import asyncio
import uuid

from app.events import (
    RESYNC,
    EventHub,
    Resync,
    Subscriber,
    job_topic,
    owner_jobs_topic,
    video_topic,
)
from db.events import ChangeEvent, ChangeKind

OWNER = uuid.uuid4()
JOB = uuid.uuid4()
VIDEO = uuid.uuid4()


def job_event(version: int, *, job_id: uuid.UUID = JOB) -> ChangeEvent:
    return ChangeEvent(
        kind=ChangeKind.JOB,
        id=job_id,
        owner_id=OWNER,
        video_id=VIDEO,
        status="RUNNING",
        stage="VOICE",
        progress=version,
        version=version,
    )


def video_event(version: int) -> ChangeEvent:
    return ChangeEvent(
        kind=ChangeKind.VIDEO,
        id=VIDEO,
        owner_id=OWNER,
        video_id=None,
        status="PROCESSING",
        stage=None,
        progress=version,
        version=version,
    )


async def _next(subscriber: Subscriber) -> ChangeEvent | Resync:
    return await asyncio.wait_for(subscriber.next(), timeout=1)


async def test_events_reach_the_subscribers_of_their_topics_only() -> None:
    hub = EventHub()
    with (
        hub.subscribe(job_topic(JOB)) as job_follower,
        hub.subscribe(owner_jobs_topic(OWNER)) as owner_follower,
        hub.subscribe(video_topic(VIDEO)) as video_follower,
        hub.subscribe(job_topic(uuid.uuid4())) as bystander,
    ):
        hub.dispatch(job_event(2))
        hub.dispatch(video_event(7))
        assert await _next(job_follower) == job_event(2)
        assert await _next(owner_follower) == job_event(2)
        assert await _next(video_follower) == video_event(7)
        for subscriber in (job_follower, owner_follower, video_follower, bystander):
            assert subscriber.pending == 0


async def test_a_subscriber_of_two_matching_topics_gets_an_event_once() -> None:
    hub = EventHub()
    with hub.subscribe(job_topic(JOB), owner_jobs_topic(OWNER)) as subscriber:
        hub.dispatch(job_event(2))
        hub.dispatch(job_event(3))
        assert await _next(subscriber) == job_event(2)
        assert await _next(subscriber) == job_event(3)


async def test_a_full_queue_turns_into_one_resync_and_never_blocks_dispatch() -> None:
    hub = EventHub(queue_size=3)
    with hub.subscribe(job_topic(JOB)) as slow:
        for version in range(2, 12):
            hub.dispatch(job_event(version))  # would block forever if dispatch waited
        assert await _next(slow) is RESYNC
        # What was queued is superseded by the state read after the resync.
        assert slow.pending == 0
        hub.dispatch(job_event(12))
        assert await _next(slow) == job_event(12)


async def test_resync_all_wakes_a_waiting_subscriber() -> None:
    hub = EventHub()
    with hub.subscribe(video_topic(VIDEO)) as subscriber:
        waiting = asyncio.create_task(subscriber.next())
        await asyncio.sleep(0)  # let it start waiting on its empty queue
        hub.resync_all()
        assert await asyncio.wait_for(waiting, timeout=1) is RESYNC


async def test_leaving_unsubscribes_from_every_topic() -> None:
    hub = EventHub()
    with hub.subscribe(job_topic(JOB), video_topic(VIDEO)):
        assert hub.subscriber_count == 1
    assert hub.subscriber_count == 0
    hub.dispatch(job_event(2))  # nobody to deliver to: no error
