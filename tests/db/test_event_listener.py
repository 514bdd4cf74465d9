"""`ChangeListener`: one LISTEN connection that parses events and survives losing its connection.

These tests commit for real on a database of their own. "Losing the connection" is made real in
two ways without touching the shared server: ``pg_terminate_backend`` on the listener's backend,
and a TCP proxy in front of the server that is taken down and brought back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import load_settings
from db.events import APPLICATION_NAME, CHANNEL, ChangeEvent, ChangeKind, ChangeListener
from db.models import JobStage, JobStatus
from db.url import DatabaseURL
from tests.support.live_jobs import create_live_job, eventually, update_job, writer_engine
from tests.support.proxy import FlakyProxy


class Recorder:
    """What a listener hands out: its events, and a count of (re)connections."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[ChangeEvent] = asyncio.Queue()
        self.connections: asyncio.Queue[int] = asyncio.Queue()
        self._count = 0

    def on_event(self, event: ChangeEvent) -> None:
        self.events.put_nowait(event)

    def on_reconnect(self) -> None:
        self._count += 1
        self.connections.put_nowait(self._count)

    async def next_event(self) -> ChangeEvent:
        return await asyncio.wait_for(self.events.get(), timeout=5)

    async def next_connection(self) -> int:
        return await asyncio.wait_for(self.connections.get(), timeout=10)


@asynccontextmanager
async def listening(
    database: DatabaseURL, recorder: Recorder, **options: Any
) -> AsyncIterator[ChangeListener]:
    listener = ChangeListener(
        database, on_event=recorder.on_event, on_reconnect=recorder.on_reconnect, **options
    )
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()


@pytest.fixture
async def writer(migrated_database: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    engine = writer_engine(migrated_database)
    yield engine
    await engine.dispose()


async def test_committed_changes_arrive_parsed_and_in_order(
    migrated_database: DatabaseURL, writer: AsyncEngine
) -> None:
    recorder = Recorder()
    settings = load_settings(database_url=migrated_database.render(hide_password=False))
    async with listening(migrated_database, recorder) as listener:
        assert listener.connected
        assert await recorder.next_connection() == 1
        job = await create_live_job(writer, settings)
        video_created, job_created = await recorder.next_event(), await recorder.next_event()
        assert (video_created.kind, video_created.id) == (ChangeKind.VIDEO, job.video_id)
        assert job_created == ChangeEvent(
            kind=ChangeKind.JOB,
            id=job.job_id,
            owner_id=job.user_id,
            video_id=job.video_id,
            status="QUEUED",
            stage=None,
            progress=0,
            version=1,
        )
        for progress in (10, 20, 30):
            await update_job(
                writer,
                job.job_id,
                status=JobStatus.RUNNING,
                stage=JobStage.VOICE,
                progress=progress,
            )
        changes = [await recorder.next_event() for _ in range(3)]
        assert [(e.progress, e.version, e.stage) for e in changes] == [
            (10, 2, "VOICE"),
            (20, 3, "VOICE"),
            (30, 4, "VOICE"),
        ]


async def test_a_malformed_notification_is_skipped(
    migrated_database: DatabaseURL, writer: AsyncEngine
) -> None:
    recorder = Recorder()
    settings = load_settings(database_url=migrated_database.render(hide_password=False))
    async with listening(migrated_database, recorder):
        async with writer.begin() as connection:
            for payload in ("not json", json.dumps({"kind": "job"}), json.dumps([1])):
                await connection.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANNEL, "payload": payload},
                )
        job = await create_live_job(writer, settings)
        assert (await recorder.next_event()).id == job.video_id


async def test_a_killed_connection_is_replaced_and_a_resync_is_asked_for(
    migrated_database: DatabaseURL, writer: AsyncEngine
) -> None:
    recorder = Recorder()
    settings = load_settings(database_url=migrated_database.render(hide_password=False))
    async with listening(migrated_database, recorder) as listener:
        assert await recorder.next_connection() == 1
        async with writer.begin() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
        assert killed == 1
        # Reconnected (at once: a dropped connection is retried without waiting), and the
        # subscribers are told to re-read what they may have missed.
        assert await recorder.next_connection() == 2
        assert listener.connected
        job = await create_live_job(writer, settings)
        assert (await recorder.next_event()).id == job.video_id


async def test_every_subscriber_gets_events_and_reconnections_while_subscribed(
    migrated_database: DatabaseURL, writer: AsyncEngine
) -> None:
    """One connection serves several subscribers (the API's hub and its in-process worker)."""
    hub, worker = Recorder(), Recorder()
    settings = load_settings(database_url=migrated_database.render(hide_password=False))
    name = "studio-test-listener"
    async with listening(migrated_database, hub, application_name=name) as listener:
        assert await hub.next_connection() == 1
        with listener.subscribe(worker.on_event, worker.on_reconnect):
            job = await create_live_job(writer, settings)
            for recorder in (hub, worker):
                assert [(await recorder.next_event()).id for _ in range(2)] == [
                    job.video_id,
                    job.job_id,
                ]
            async with writer.begin() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": name},
                )
            assert killed == 1
            assert await hub.next_connection() == 2
            assert await worker.next_connection() == 1
        later = await create_live_job(writer, settings)
        assert (await hub.next_event()).id == later.video_id
        assert worker.events.empty()


async def test_a_database_down_at_start_is_retried_and_check_reconnects_at_once(
    migrated_database: DatabaseURL,
) -> None:
    proxy = FlakyProxy(migrated_database)
    await proxy.up()
    await proxy.down()  # the port is known, nothing answers on it
    recorder = Recorder()
    # A long backoff: only `check` (what /readyz calls) can make it reconnect in time.
    async with listening(proxy.url, recorder, min_backoff=60, max_backoff=60) as listener:
        assert not listener.connected
        assert listener.last_error is not None
        assert await listener.check(within=1) is False
        await proxy.up()
        assert await listener.check(within=5) is True
        assert await recorder.next_connection() == 1

        await proxy.down()  # cuts the listener's connection
        await eventually(lambda: not listener.connected, within=5, what="the drop noticed")
        assert await listener.check(within=1) is False
        await proxy.up()
        assert await listener.check(within=5) is True
        assert await recorder.next_connection() == 2
    await proxy.down()


def test_payloads_parse_into_typed_events() -> None:
    event = ChangeEvent.from_payload(
        json.dumps(
            {
                "kind": "video",
                "id": "6f1c8d4e-7f4b-4a5e-9d1e-1c2b3a4d5e6f",
                "owner_id": "0b9e2f8a-6c1d-4e3f-8a7b-9c0d1e2f3a4b",
                "status": "READY",
                "progress": 100,
                "deleted": True,
                "version": 9,
            }
        )
    )
    assert (event.kind, event.video_id, event.stage, event.deleted) == (
        ChangeKind.VIDEO,
        None,
        None,
        True,
    )
    for bad in ("[]", "{}", '{"kind": "user", "id": "x"}', "nope"):
        with pytest.raises(ValueError):  # noqa: PT011 (each is a different ValueError)
            ChangeEvent.from_payload(bad)
