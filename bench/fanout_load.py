"""The load of `bench/bench_fanout.py`: many ``jobProgress`` subscribers, and one writer.

* `Fleet` opens websockets (graphql-transport-ws) to one API process, each carrying up to
  ``per_connection`` subscriptions of one user's jobs, and notes every state it receives as
  ``(version, monotonic time)`` per subscription. Refusals (an ``error`` message, a close code, a
  connection that would not open) are counted, not raised: at the largest N they are the result.
* `Writer` commits one progress update per job per second, spread evenly over the second, each
  its own transaction (one autocommitted ``UPDATE … RETURNING version`` on its own asyncpg
  connection), and notes when each ``(job, version)`` was committed.

Both run in the benchmark's event loop, so the two times of a state come from one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from schema.relay import to_global_id

QUERY = (
    "subscription Progress($id: ID!) "
    "{ jobProgress(jobId: $id) { id status stage progress version } }"
)
OPEN_TIMEOUT = 60.0


@dataclass
class Subscription:
    job_id: uuid.UUID
    #: Every state received after the first (the current state at subscribe time).
    received: list[tuple[int, float]] = field(default_factory=list)
    first: int | None = None  # version of the current state sent first
    failed: str | None = None
    slot: _Slot | None = None  # its connection's turn to open


class _Slot:
    """A connection's turn in `Fleet.open`: held until each of its subscriptions has its first
    state or failed (or the connection ends), so that at most ``batch`` connections' first
    reads are in flight at once."""

    def __init__(self, gate: asyncio.Semaphore, pending: int) -> None:
        self.gate = gate
        self.pending = pending
        self.released = False

    def settle(self) -> None:
        self.pending -= 1
        if self.pending <= 0:
            self.release()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate.release()


@dataclass
class Fleet:
    """Subscribers of one run, grouped in connections of one user each."""

    url: str
    tokens: dict[uuid.UUID, str]  # user -> access token
    plan: list[tuple[uuid.UUID, list[uuid.UUID]]]  # (user, the job of each subscription)
    subscriptions: list[Subscription] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _unsettled: int = 0  # subscriptions with neither a first state nor a failure
    _all_settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def live(self) -> int:
        """Subscriptions that got their first state and have not failed."""
        return sum(1 for s in self.subscriptions if s.first is not None and s.failed is None)

    async def open(self, *, within: float, batch: int) -> None:
        """Open every connection and subscribe, ``batch`` connections at a time (the next one
        once each subscription of one has its first state or failed; 0: all at once, a
        reconnect storm); returns when all have, or after ``within`` seconds."""
        gate = asyncio.Semaphore(batch or len(self.plan))
        for user, jobs in self.plan:
            subs = [Subscription(job) for job in jobs]
            self.subscriptions += subs
            self._unsettled += len(subs)
            self._tasks.append(asyncio.create_task(self._connection(gate, user, subs)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._all_settled.wait()
        for sub in self.subscriptions:
            if sub.first is None and sub.failed is None:
                self._fail([sub], "no first state in time")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connection(
        self, gate: asyncio.Semaphore, user: uuid.UUID, subs: list[Subscription]
    ) -> None:
        await gate.acquire()
        slot = _Slot(gate, len(subs))
        for sub in subs:
            sub.slot = slot
        try:
            async with connect(
                self.url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                proxy=None,
                open_timeout=OPEN_TIMEOUT,
                max_queue=None,  # never stop reading: a full buffer would stall the server
                ping_interval=None,
            ) as ws:
                auth = {"Authorization": f"Bearer {self.tokens[user]}"}
                await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"connection_init answered {ack.get('type')}")
                for index, sub in enumerate(subs):
                    gid = to_global_id("GenerationJob", sub.job_id)
                    payload = {"query": QUERY, "variables": {"id": gid}}
                    await ws.send(
                        json.dumps({"id": str(index), "type": "subscribe", "payload": payload})
                    )
                await self._read(ws, subs)
        except asyncio.CancelledError:
            raise
        except (OSError, TimeoutError, InvalidHandshake, RuntimeError) as exc:
            self._fail(subs, f"connection: {type(exc).__name__}: {exc}"[:120])
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            reason = closed.rcvd.reason if closed.rcvd else ""
            self._fail(subs, f"closed {code} {reason}".strip())
        finally:
            slot.release()

    async def _read(self, ws: ClientConnection, subs: list[Subscription]) -> None:
        async with contextlib.aclosing(_messages(ws)) as messages:
            async for message in messages:
                at = time.monotonic()
                kind = message.get("type")
                if kind == "ping":
                    await ws.send('{"type":"pong"}')
                    continue
                if kind not in ("next", "error", "complete"):
                    continue
                sub = subs[int(message["id"])]
                if kind == "next" and message["payload"].get("data"):
                    version = message["payload"]["data"]["jobProgress"]["version"]
                    if sub.first is None:
                        sub.first = version
                        self._settle(sub)
                    else:
                        sub.received.append((version, at))
                else:
                    self._fail([sub], f"{kind}: {_problem(message.get('payload'))}")

    def _fail(self, subs: list[Subscription], reason: str) -> None:
        for sub in subs:
            if sub.failed is None:
                if sub.first is None:
                    self._settle(sub)
                sub.failed = reason
                self.failures[reason] += 1

    def _settle(self, sub: Subscription) -> None:
        if sub.slot is not None:
            sub.slot.settle()
        self._unsettled -= 1
        if self._unsettled <= 0:
            self._all_settled.set()


def _problem(payload: Any) -> str:
    """An error message's first error, in short: its code and message."""
    errors = payload.get("errors") if isinstance(payload, dict) else payload
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = (errors[0].get("extensions") or {}).get("code")
        return f"{code}: {errors[0].get('message', '')}"[:100]
    return json.dumps(payload)[:100]


async def _messages(ws: ClientConnection) -> Any:
    async for raw in ws:
        yield json.loads(raw)


class Writer:
    """One progress update per job per second, on its own connection, until stopped: spread
    evenly over the second, or (``together``) every job's one after another at the start of
    each second, each its own commit, as when many runs report at once."""

    def __init__(
        self, connect: dict[str, Any], jobs: list[uuid.UUID], *, together: bool = False
    ) -> None:
        self.connect = connect  # asyncpg.connect keywords
        self.jobs = jobs
        self.together = together
        self.committed: dict[tuple[uuid.UUID, int], float] = {}
        self.late = 0  # updates that started behind their slot (the loop was busy)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def commits_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.committed.values() if start <= at < end)

    async def _run(self) -> None:
        connection = await asyncpg.connect(**self.connect)
        statement = await connection.prepare(
            "UPDATE generation_jobs SET progress = $2 WHERE id = $1 RETURNING version"
        )
        count = len(self.jobs)
        step = 1.0 if self.together else 1.0 / count
        began = time.monotonic()
        try:
            for tick in range(1_000_000_000):
                slot = began + tick * step
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -step:
                    self.late += 1
                if self.together:
                    round_of_jobs, progress = self.jobs, tick % 100 + 1
                else:
                    round_of_jobs, progress = [self.jobs[tick % count]], (tick // count) % 100 + 1
                for job in round_of_jobs:
                    version = await statement.fetchval(job, progress)
                    self.committed[(job, version)] = time.monotonic()
        finally:
            await connection.close()
