"""Rate-limit buckets (``rate_limit_buckets``): GCRA, one upsert per operation.

GCRA, the generic cell rate algorithm, is a token bucket kept as one timestamp per bucket: its
theoretical arrival time ``tat``. A bucket that refills one unit every ``emission`` (1 / rate) and
holds ``burst`` units lets an operation of cost ``n`` through when

    max(tat, now) + n·emission  <=  now + burst·emission

and then moves ``tat`` to the left-hand side. Once ``tat`` is in the past the bucket is full,
exactly as if it had no row, so idle rows can be deleted at any time (`sweep_idle`).

`take` charges every bucket of one operation in one statement. ``ON CONFLICT DO UPDATE`` locks
each row before deciding, so two processes can never both spend a bucket's last unit; rows are
taken in key order, the same order in every process, so that two operations sharing buckets
(a user's and an address's) cannot deadlock. A bucket without room is not written, and so is
missing from ``RETURNING``: that is how the caller learns which buckets refused. The caller then
gives back what the others were charged (`refund`), so a refused operation costs nothing, and
asks how long to wait (`wait_for`). `charging` puts the same upsert and a read in one
statement: the read runs when the buckets, as last committed, have room, and the upsert after
it (issue 12: the compiled read path).

Time is the database's (``now()``), the same for every process on every machine; ``now`` is
there for tests. The functions run on the connection they are given and never begin or commit:
the caller uses an autocommit connection, so each statement is its own short transaction,
separate from the operation's session (which may roll back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Charge:
    """What one operation asks of one bucket."""

    key: str
    #: Time for one unit to come back (60 s / the rate per minute).
    emission: timedelta
    #: Units the bucket holds when full: how many may come at once.
    burst: int
    #: Units this operation takes (one, or one per `signIn` field …).
    cost: int = 1


# The operation's charges, one row per bucket, at the database's time (or the given one).
_REQUEST = """
    request AS (
        SELECT r.key,
               clock.now,
               r.cost * r.emission  AS charge,     -- what the operation takes from the bucket
               r.burst * r.emission AS tolerance   -- how far tat may run ahead of now
        FROM unnest(CAST(:charge_keys AS text[]), CAST(:charge_emissions AS interval[]),
                    CAST(:charge_costs AS integer[]), CAST(:charge_bursts AS integer[]))
               AS r (key, emission, cost, burst),
             (SELECT COALESCE(CAST(:charge_now AS timestamptz), now()) AS now) AS clock
    )
"""


def _upsert(also: str = "true") -> str:
    """Charge every bucket of ``request`` with room (and ``also``), locking its row first."""
    return f"""
    INSERT INTO rate_limit_buckets AS bucket (key, tat)
    SELECT key, now + charge FROM request
    WHERE charge <= tolerance                      -- a new bucket is full
      AND {also}
    ORDER BY key                                   -- one lock order in every process
    ON CONFLICT (key) DO UPDATE
    SET tat = (SELECT GREATEST(bucket.tat, now) + charge
               FROM request WHERE request.key = bucket.key)
    WHERE (SELECT GREATEST(bucket.tat, now) + charge <= now + tolerance
           FROM request WHERE request.key = bucket.key)
    RETURNING bucket.key
    """  # noqa: S608 - a condition of this module's own


_TAKE = text(f"WITH {_REQUEST} {_upsert()}")

# The rows are locked in key order first (`take`'s order), then given back what they were charged.
_REFUND = text(
    """
    WITH refund AS (
        SELECT r.key, r.cost * r.emission AS charge
        FROM unnest(CAST(:charge_keys AS text[]), CAST(:charge_emissions AS interval[]),
                    CAST(:charge_costs AS integer[])) AS r (key, emission, cost)
    ), locked AS (
        SELECT key FROM rate_limit_buckets
        WHERE key IN (SELECT key FROM refund)
        ORDER BY key
        FOR UPDATE
    )
    UPDATE rate_limit_buckets AS bucket
    SET tat = bucket.tat - refund.charge
    FROM refund JOIN locked USING (key)
    WHERE bucket.key = refund.key
    """
)

# How long until every refused bucket has room: max(tat, now) + charge - tolerance - now.
_WAIT = text(
    """
    SELECT MAX(GREATEST(bucket.tat, clock.now) + (r.cost - r.burst) * r.emission - clock.now)
    FROM unnest(CAST(:charge_keys AS text[]), CAST(:charge_emissions AS interval[]),
                CAST(:charge_costs AS integer[]), CAST(:charge_bursts AS integer[]))
           AS r (key, emission, cost, burst)
    JOIN rate_limit_buckets AS bucket USING (key),
         (SELECT COALESCE(CAST(:charge_now AS timestamptz), now()) AS now) AS clock
    """
)

# SKIP LOCKED: never wait for (or deadlock with) a bucket that an operation is charging.
_SWEEP = text(
    """
    DELETE FROM rate_limit_buckets
    WHERE key IN (
        SELECT key FROM rate_limit_buckets
        WHERE tat < COALESCE(CAST(:now AS timestamptz), now())
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    """
)


async def take(
    connection: AsyncConnection, charges: Sequence[Charge], *, now: datetime | None = None
) -> list[Charge]:
    """Charge every bucket that has room; the charges that did not fit (none: go ahead).

    Keys must be distinct (one statement cannot change a row twice).
    """
    taken = set((await connection.execute(_TAKE, charge_parameters(charges, now=now))).scalars())
    return [charge for charge in charges if charge.key not in taken]


async def refund(connection: AsyncConnection, charges: Sequence[Charge]) -> None:
    """Give back what `take` charged these buckets (the operation was refused elsewhere)."""
    if charges:
        parameters = charge_parameters(charges)
        del parameters["charge_bursts"], parameters["charge_now"]
        await connection.execute(_REFUND, parameters)


async def wait_for(
    connection: AsyncConnection, charges: Sequence[Charge], *, now: datetime | None = None
) -> timedelta:
    """How long until every one of these buckets has room for its charge (zero if it has)."""
    wait = await connection.scalar(_WAIT, charge_parameters(charges, now=now))
    return max(wait or timedelta(0), timedelta(0))


async def sweep_idle(
    connection: AsyncConnection, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """Delete up to ``limit`` full buckets (their rows say nothing); how many went."""
    result = await connection.execute(_SWEEP, {"now": now, "limit": limit})
    return result.rowcount


def charging(columns: Mapping[str, str]) -> str:
    """A statement that reads ``columns`` and charges ``charges`` (`charge_parameters`) as
    `take` does, in one round trip, and reads only when the buckets have room.

    ``columns`` maps each column's name to its expression: one row's worth of expressions with
    no ``FROM`` of their own (scalar subqueries read the tables) and no parameter named
    ``charge_…``. The statement's columns are those, then ``taken``: the keys charged (``NULL``
    for none); when ``taken`` is not every key, the operation was refused (its columns are
    ``NULL``), and the caller gives back what was charged (`refund`), as after `take`.

    The order is what makes it cheap. First ``room`` reads the buckets as last committed, without
    locking them. Each column is ``CASE WHEN room.fits THEN … END``: PostgreSQL evaluates a
    branch, and the subqueries in it, only when its condition holds, so an operation refused by
    what was committed when it started reads nothing. (A filter would not do: PostgreSQL 16
    plans a filter over a join as a join filter, checked after the row it guards is computed.)
    Then the upsert charges, row locks and all, as `take` does and with the same verdict, and
    only when ``room`` said yes. It runs last, when the projection reaches ``taken``, after
    the columns before it, so the rows stay locked for the upsert and the commit, not the read:
    a bucket's reads do not queue behind each other. Only an operation whose bucket ran out
    between its start and its charge (another took the last units meanwhile) has read for
    nothing: it is refused all the same.

    Run it outside a transaction (autocommit), as `take` is: the charge commits with the
    statement (a transaction would hold the rows locked to its end, or roll the charge back).
    """
    guarded = "".join(
        f"CASE WHEN room.fits THEN {expression} END AS {name},\n           "
        for name, expression in columns.items()
    )
    return f"""
    WITH {_REQUEST},
    room AS (
        SELECT COALESCE(bool_and(GREATEST(bucket.tat, request.now) + request.charge
                                 <= request.now + request.tolerance), true) AS fits
        FROM request LEFT JOIN rate_limit_buckets AS bucket USING (key)
    ),
    taken AS ({_upsert("(SELECT fits FROM room)")})
    SELECT {guarded}(SELECT array_agg(key) FROM taken) AS taken
    FROM room
    """  # noqa: S608 - ``columns`` come from the caller's own declarations, values are bound


def charge_parameters(
    charges: Sequence[Charge], *, now: datetime | None = None
) -> dict[str, object]:
    """The parameters of `charging`'s statement (and of `take`'s) for these charges."""
    return {
        "charge_keys": [charge.key for charge in charges],
        "charge_emissions": [charge.emission for charge in charges],
        "charge_costs": [charge.cost for charge in charges],
        "charge_bursts": [charge.burst for charge in charges],
        "charge_now": now,
    }
