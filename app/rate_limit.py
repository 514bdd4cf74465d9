"""Rate limits: which buckets an operation is charged to, and asking PostgreSQL (SPEC §4).

Every GraphQL operation is charged one unit to its client address's ``operations`` bucket and,
when signed in, one to its user's. Two kinds of mutation field cost more and have stricter
buckets of their own, charged one unit per field in the document:

* ``signIn`` — per client address, and per user when the caller is signed in already;
* ``startGeneration`` — per user (it needs one).

Buckets live in PostgreSQL (`db.queries.rate_limits`: GCRA, one upsert per operation), so every
API process on every machine counts against the same numbers. An operation that does not fit in
one of its buckets is refused with ``RATE_LIMITED`` and a retry-after hint, and costs nothing:
what the other buckets were charged is given back. `RateLimiter.check` charges with a statement
of its own; a caller that charges inside its own statement (`rate_limits.charging`: the compiled
read path's known reads) reports what it took to `RateLimiter.settle`.

The client address is the ASGI ``client``. Behind a reverse proxy, uvicorn (``studio serve``)
replaces it with the address in ``X-Forwarded-For`` when, and only when, the connection comes
from an address in ``FORWARDED_ALLOW_IPS`` (uvicorn's own setting; ``127.0.0.1,::1`` by
default); this module never reads the header itself. IPv6 clients are counted per /64, the block
one subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import BadUserInput, RateLimited
from app.settings import Settings
from db.queries import rate_limits
from db.queries.rate_limits import Charge

logger = logging.getLogger("studio.rate_limit")

#: How often each process deletes full buckets (rows that no longer say anything).
SWEEP_INTERVAL_SECONDS = 60.0


class RateLimitExceeded(RateLimited):
    """``RATE_LIMITED`` with ``extensions.retryAfter``: whole seconds until a retry fits."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests: try again in {retry_after} s.")
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, Any]:
        # graphql-core copies an original error's ``extensions`` into the GraphQL error.
        return {"code": self.code, "retryAfter": self.retry_after}


@dataclass(frozen=True)
class Rate:
    per_minute: float
    burst: int

    def charge(self, key: str, cost: int = 1) -> Charge:
        return Charge(key, timedelta(minutes=1) / self.per_minute, self.burst, cost)


@dataclass(frozen=True)
class Rates:
    operations: Rate
    ip_operations: Rate
    sign_in: Rate
    start_generation: Rate

    @classmethod
    def from_settings(cls, settings: Settings) -> Rates:
        return cls(
            operations=Rate(
                settings.rate_limit_operations_per_minute, settings.rate_limit_operations_burst
            ),
            ip_operations=Rate(
                settings.rate_limit_ip_operations_per_minute,
                settings.rate_limit_ip_operations_burst,
            ),
            sign_in=Rate(settings.rate_limit_sign_in_per_minute, settings.rate_limit_sign_in_burst),
            start_generation=Rate(
                settings.rate_limit_start_generation_per_minute,
                settings.rate_limit_start_generation_burst,
            ),
        )


def charges_for(
    rates: Rates,
    *,
    client: str,
    user_id: uuid.UUID | None,
    sign_ins: int = 0,
    generations: int = 0,
) -> list[Charge]:
    """The buckets one operation is charged to; `BadUserInput` when it could never fit."""
    charges = [rates.ip_operations.charge(f"ip:{client}:operations")]
    if user_id is not None:
        charges.append(rates.operations.charge(f"user:{user_id}:operations"))
    if sign_ins:
        _check_fits("signIn", sign_ins, rates.sign_in)
        charges.append(rates.sign_in.charge(f"ip:{client}:signIn", sign_ins))
        if user_id is not None:
            charges.append(rates.sign_in.charge(f"user:{user_id}:signIn", sign_ins))
    if generations and user_id is not None:
        _check_fits("startGeneration", generations, rates.start_generation)
        charges.append(
            rates.start_generation.charge(f"user:{user_id}:startGeneration", generations)
        )
    return charges


def client_address(scope: MutableMapping[str, Any]) -> str:
    """The caller's address as counted: IPv4 as is, IPv6 as its /64 (see the module docstring)."""
    client = scope.get("client")
    if not client:
        return "unknown"  # a Unix socket: every caller is the proxy in front
    host = str(client[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    """Checks operations against their buckets; one per application.

    ``clock`` gives the time buckets are computed at; ``None`` (the default) means the
    database's clock, shared by every process. Tests pass a fixed one.
    """

    def __init__(
        self, rates: Rates, *, clock: Callable[[], datetime | None] = lambda: None
    ) -> None:
        self.rates = rates
        self.clock = clock
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS

    async def check(self, engine: AsyncEngine, charges: Sequence[Charge]) -> int | None:
        """Charge the buckets; ``None`` when the operation may run, else seconds to wait.

        One statement when the operation fits; two more when it does not. If the database
        cannot be asked, the operation runs (the failure is logged): the limits guard the
        database, and an operation that needs it will fail on its own.
        """
        now = self.clock()
        wait: timedelta | None = None
        try:
            async with _autocommit(engine) as connection:
                refused = await rate_limits.take(connection, charges, now=now)
                if refused:
                    await rate_limits.refund(connection, [c for c in charges if c not in refused])
                    wait = await rate_limits.wait_for(connection, refused, now=now)
                await self._sweep_if_due(connection, now)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("rate limits not checked (database unavailable): %s", exc)
            return None
        if wait is None:
            return None
        # Whole seconds, rounded up: a retry after the hint fits (unless others spend it first).
        return max(1, math.ceil(wait.total_seconds()))

    async def settle(
        self, engine: AsyncEngine, charges: Sequence[Charge], taken: Collection[str]
    ) -> bool:
        """After a statement of the caller's charged ``charges`` itself (`rate_limits.charging`),
        ``taken`` being the keys it charged: whether the operation went ahead (every bucket had
        room). When it did not, what the others were charged is given back, as `check` does;
        the caller then hands the operation to `check`, which refuses it with its wait. No
        statement unless something is given back (but the sweep, once a minute)."""
        went_ahead = all(charge.key in taken for charge in charges)
        charged = [] if went_ahead else [charge for charge in charges if charge.key in taken]
        if not charged and time.monotonic() < self._next_sweep:
            return went_ahead
        try:
            async with _autocommit(engine) as connection:
                await rate_limits.refund(connection, charged)
                await self._sweep_if_due(connection, self.clock())
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("rate limits not settled (database unavailable): %s", exc)
        return went_ahead

    async def give_back(self, engine: AsyncEngine, charges: Sequence[Charge]) -> None:
        """Refund charges that let an operation through (`check`'s, or a statement's that
        `settle` was told of), when it is handed to another path after all, which charges it
        again."""
        try:
            async with _autocommit(engine) as connection:
                await rate_limits.refund(connection, charges)
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("rate limits not given back (database unavailable): %s", exc)

    async def _sweep_if_due(self, connection: AsyncConnection, now: datetime | None) -> None:
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
            await rate_limits.sweep_idle(connection, now=now)


@asynccontextmanager
async def _autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of the pool on which every statement commits on its own."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


def _check_fits(field: str, count: int, rate: Rate) -> None:
    if count > rate.burst:
        raise BadUserInput(
            f"One operation may hold at most {rate.burst} `{field}` fields; it has {count}."
        )
