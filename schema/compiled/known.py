"""Operations answered by their compiled statement before, answered again without Strawberry.

Once an HTTP query has been answered on the compiled path, its document is known to parse, to
pass the shape limits and the schema's validation (both depend on the text alone), and to name a
query operation. `KnownReads` remembers it by its text and operation name. When the same
operation arrives again (a POST with a JSON body, the way clients and GraphiQL send queries), the
view asks `KnownReads.answer` first, which does what the extensions would do for it and nothing
else:

* the caller: signed in with a token that verified (the middleware's work), else not known;
* the variables coerced against the operation (graphql-core's own ``get_variable_values``);
* the ``cost`` limit with those variables (`schema.extensions.limits.DocumentChecker.cost_errors`);
* the rate limits charged, as `schema.extensions.rate_limits.RateLimitCheck` charges a query,
  but inside the plan's statement when it runs on the driver (`_fetch_charged`);
* the plan for those variables (`schema.compiled.cache.PlanCache`), its statement run as on the
  full path (`schema.compiled.extension.run_plan`: one statement, no ``BEGIN``);
* the access log line and the operation metrics, as `schema.extensions.telemetry` writes them.

Of these, the variables, the cost and the plan depend on nothing but the request's body: a body
answered before is remembered with its operation, its coerced variables and its plan
(`KnownReads._prepare`), so a client that repeats a read, sending the same bytes, skips the
parsing, the coercion, the cost and the plan lookup. The caller, the statement's parameters
(a signed media URL's expiry moves with the clock) and the rate limits are settled per request.

Anything unusual hands the request to the full path untouched: a body of another shape, an
unknown document, variables that do not coerce, an operation over its cost or its rate, a plan
that rules the values out, a statement whose ``ok`` says a resolver would answer an error, a
statement that fails in the database (the full path then tries it once more, then resolves).
The full path then answers (and reports) exactly what it always did; `answer` has charged
nothing for a request it hands over: a charge its statement took is given back (when the
operation was refused, the full path checks again and refuses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from graphql import (
    DocumentNode,
    GraphQLSchema,
    ListTypeNode,
    NamedTypeNode,
    OperationDefinitionNode,
    TypeNode,
)
from graphql.execution.values import VariableValues, get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from app.observability.metrics import OperationRecord
from app.rate_limit import RateLimiter, charges_for, client_address
from app.request_context import RequestState
from app.state import AppState
from db.queries.rate_limits import Charge, charge_parameters
from schema.compiled.cache import LRU, PlanCache, plan_key
from schema.compiled.documents import stopped_to_resolve
from schema.compiled.extension import run_plan
from schema.compiled.plan import Plan
from schema.compiled.sql import Fallback
from schema.extensions.limits import DocumentChecker
from schema.extensions.telemetry import log_operation
from schema.loaders import SessionGate
from schema.transport.streaming import autocommits

logger = logging.getLogger(__name__)

#: Operations remembered per process, least recently used first out.
KNOWN_OPERATIONS = 256

#: The body of a request `answer` takes: nothing but these members.
_MEMBERS = frozenset({"query", "variables", "operationName"})


#: Request bodies remembered (`KnownReads._prepare`) per operation remembered, and the longest
#: one that is: a client repeating a read sends the same bytes again.
BODIES_PER_OPERATION = 4
KNOWN_BODY_BYTES = 4096

#: Cost verdicts kept per operation, by the values that can change its cost.
COSTS_PER_OPERATION = 64

#: Variables of these types never change an operation's cost (`schema.extensions.document_measures`
#: counts page sizes, and fields kept or dropped by directives), unless they are lists.
_COSTLESS_TYPES = frozenset({"String", "ID"})


@dataclass
class KnownOperation:
    document: DocumentNode
    operation: OperationDefinitionNode
    #: The variables whose values can change the cost (page sizes, `@include` conditions …).
    costly: tuple[str, ...] = ()
    #: Whether the operation was within the ``cost`` limit, by those variables' values.
    within_cost: dict[Hashable, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, document: DocumentNode, operation: OperationDefinitionNode) -> KnownOperation:
        costly = tuple(
            definition.variable.name.value
            for definition in operation.variable_definitions or ()
            if _named_type(definition.type) not in _COSTLESS_TYPES or _is_list(definition.type)
        )
        return cls(document, operation, costly)

    @property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None

    def cost_key(self, variables: Mapping[str, Any]) -> Hashable | None:
        """The values the cost depends on, or ``None`` when they are not plain scalars. A list
        counts by its length (``nodes(ids:)`` costs its selection once per id)."""
        values = tuple(_measured(variables.get(name)) for name in self.costly)
        if not all(isinstance(value, int | bool | str | tuple | None) for value in values):
            return None
        return values


@dataclass(frozen=True)
class _Prepared:
    """A body's operation, its variables coerced, its plan, and the plan's parameters from
    those variables (`Plan.bind`)."""

    known: KnownOperation
    variables: VariableValues
    plan: Plan
    bound: Mapping[str, Any]


class KnownReads:
    def __init__(
        self,
        plans: PlanCache,
        checker: DocumentChecker,
        limiter: RateLimiter | None,
        *,
        max_json_depth: int,
        cursor_key: bytes,
        size: int = KNOWN_OPERATIONS,
    ) -> None:
        self.plans = plans
        #: The key cursors are signed with (`schema.relay.cursor_secret`), for `Plan.bind`.
        self.cursor_key = cursor_key
        self.checker = checker
        self.limiter = limiter
        self.max_json_depth = max_json_depth
        self.size = size
        #: How many requests `answer` answered (the rest went to the full path).
        self.answered = 0
        self._known: LRU[tuple[str, str | None], KnownOperation] = LRU(size)
        #: Request bodies answered before, with what `_prepare` made of them.
        self._bodies: LRU[bytes, _Prepared] = LRU(size * BODIES_PER_OPERATION)

    def learn(
        self,
        query: str,
        operation_name: str | None,
        document: DocumentNode,
        operation: OperationDefinitionNode,
    ) -> None:
        """``query``'s operation ``operation_name`` was answered on the compiled path. A document
        of one operation is known without the name too (a request need not send it)."""
        known = KnownOperation.of(document, operation)
        keys = [(query, operation_name)]
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) == 1:
            keys.append((query, None))
        for key in keys:
            self._known.put(key, known)

    def __len__(self) -> int:
        return len(self._known)

    async def answer(self, request: Request, schema: GraphQLSchema) -> str | None:
        """The response's ``data`` as JSON text, or ``None``: the full path answers."""
        started = time.perf_counter()
        request_state = RequestState.of(request.scope)
        viewer = request_state.viewer
        if viewer is None or request_state.auth_error is not None:
            return None
        body = await request.body()
        prepared = self._bodies.get(body) or self._prepare(body, schema)
        if prepared is None:
            return None
        known, plan = prepared.known, prepared.plan
        state = AppState.of(request)
        try:
            params = plan.parameters(
                prepared.variables, viewer.user_id, state.settings, prepared.bound
            )
        except Fallback:
            return None
        charges: list[Charge] = []
        if self.limiter is not None:
            charges = charges_for(
                self.limiter.rates, client=client_address(request.scope), user_id=viewer.user_id
            )
        data = await _fetch(state, plan, params, self.limiter, charges)
        if data is None:
            return None
        self.answered += 1
        seconds = time.perf_counter() - started
        state.metrics.record_operation(
            OperationRecord("query", known.name, "ok", seconds, (), validated=True)
        )
        log_operation(
            request_id=request_state.request_id,
            operation_type="query",
            name=known.name,
            outcome="ok",
            seconds=seconds,
            codes=(),
            viewer_id=viewer.user_id,
            transport="http",
            path="compiled",
        )
        return data

    def _prepare(self, body: bytes, schema: GraphQLSchema) -> _Prepared | None:
        """What the body asks for, when this path can answer it; remembered by the body when it
        is short (nothing here depends on more than the body)."""
        request_data = self._request_data(body)
        if request_data is None:
            return None
        query, variables, operation_name = request_data
        known = self._known.get((query, operation_name))
        if known is None:
            return None
        coerced = get_variable_values(schema, known.operation.variable_definitions or (), variables)
        if not isinstance(coerced, VariableValues):
            return None
        if not self._within_cost(schema, known, variables):
            return None
        _, plan = self.plans.get(plan_key(query, known.name, variables, coerced))
        if plan is None:  # not planned for these values yet, or not compilable with them
            return None
        try:
            bound = plan.bind(coerced, self.cursor_key)
        except Fallback:
            return None
        prepared = _Prepared(known, coerced, plan, bound)
        if len(body) <= KNOWN_BODY_BYTES:
            self._bodies.put(body, prepared)
        return prepared

    def _within_cost(
        self, schema: GraphQLSchema, known: KnownOperation, variables: Mapping[str, Any]
    ) -> bool:
        key = known.cost_key(variables)
        if key is not None and key in known.within_cost:
            return known.within_cost[key]
        within = not self.checker.cost_errors(schema, known.document, known.name, variables)
        if key is not None:
            if len(known.within_cost) >= COSTS_PER_OPERATION:
                known.within_cost.clear()
            known.within_cost[key] = within
        return within

    def _request_data(self, body: bytes) -> tuple[str, dict[str, Any], str | None] | None:
        # orjson, not `client_json`: whatever it refuses (bad UTF-8 or JSON, NaN, integers past
        # 64 bits, nesting past 1024) the full path answers as it always does; the depth bound
        # the full path applies is checked on what was parsed.
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if _depth(data) > self.max_json_depth:
            return None
        if not isinstance(data, dict) or not data.keys() <= _MEMBERS:
            return None
        query = data.get("query")
        variables = data.get("variables")
        operation_name = data.get("operationName") or None
        if (
            not isinstance(query, str)
            or not isinstance(variables, Mapping | None)
            or not isinstance(operation_name, str | None)
        ):
            return None
        return query, dict(variables or {}), operation_name


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (``client_json``'s measure)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            level += [(child, depth + 1) for child in item]
    return deepest


def _measured(value: Any) -> Any:
    """A list of plain values by its length (what a cost can depend on); anything else as it is."""
    if isinstance(value, list) and all(isinstance(item, str | int | None) for item in value):
        return ("list", len(value))
    return value


def _is_list(type_node: TypeNode) -> bool:
    while not isinstance(type_node, NamedTypeNode):
        if isinstance(type_node, ListTypeNode):
            return True
        type_node = type_node.type  # type: ignore[attr-defined]  # non-null wraps one
    return False


def _named_type(type_node: TypeNode) -> str:
    while not isinstance(type_node, NamedTypeNode):
        type_node = type_node.type  # type: ignore[attr-defined]  # list and non-null wrap one
    return type_node.name.value


async def _fetch(
    state: AppState,
    plan: Plan,
    params: dict[str, Any],
    limiter: RateLimiter | None,
    charges: Sequence[Charge],
) -> str | None:
    """The statement's ``data`` (`run_plan`'s answer), once the rate limits have charged the
    operation. On the pool's own connection, through the driver, when the operation's sessions
    are the engine's and a statement needs no transaction
    (`schema.transport.streaming.autocommits`): then the charge is part of the statement
    (`_fetch_charged`). Else in a session of the operation's own (a test's session bound to its
    transaction then sees that transaction), after the limiter's own statement: a charge inside
    the session's transaction would be rolled back with it."""
    bind = state.sessionmaker.kw.get("bind")
    if isinstance(bind, AsyncEngine) and autocommits(state.settings):
        if limiter is not None and bind is state.engine:
            return await _fetch_charged(bind, limiter, plan, params, charges)
        if limiter is None:
            row = await _fetch_on_driver(bind, plan.positional_sql, plan.positional(params))
            return None if row is None else _data(*row)
    if limiter is not None and await limiter.check(state.engine, charges) is not None:
        return None
    async with state.sessionmaker() as session:
        gate = SessionGate(session)
        gate.reads_only(autocommit=autocommits(state.settings))
        try:
            data = await run_plan(gate, plan, params)
        finally:
            await gate.close()
    if data is None and limiter is not None:  # the full path charges it again
        await limiter.give_back(state.engine, charges)
    return data


async def _fetch_charged(
    engine: AsyncEngine,
    limiter: RateLimiter,
    plan: Plan,
    params: dict[str, Any],
    charges: Sequence[Charge],
) -> str | None:
    """The read and its rate-limit charge in one statement (issue 12: the charge's own round
    trip halved the known path's throughput), which reads nothing when a bucket had no room as
    the statement started, and charges after it read. A refused operation is given back what it
    was charged and handed over: the full path's check refuses it with its wait. So is one
    whose resolver answer would carry an error, whose charge is given back too, since the full
    path charges it again. A statement that failed has charged nothing (its charge was part of
    it)."""
    sql, names = plan.charged
    values = params | charge_parameters(charges, now=limiter.clock())
    row = await _fetch_on_driver(engine, sql, plan.positional(values, names))
    if row is None:
        return None
    if not await limiter.settle(engine, charges, row["taken"] or ()):
        return None
    answer = _data(row["data"], row["ok"])
    if answer is None:
        await limiter.give_back(engine, charges)
    return answer


async def _fetch_on_driver(engine: AsyncEngine, sql: str, args: list[Any]) -> asyncpg.Record | None:
    """What SQLAlchemy's execution adds to one statement (a session, its transaction state, the
    cursor adapter) costs several times the statement here; the pool still hands out and takes
    back the connection. A failure is `None` (the full path runs the statement again, through
    SQLAlchemy, which handles a dead connection); a dead connection is not given back."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            row = await driver.fetchrow(sql, *args)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if not stopped_to_resolve(exc):
                logger.info("a compiled statement failed on the known path: %s", exc)
            if not isinstance(exc, asyncpg.PostgresError) or driver.is_closed():
                await connection.invalidate()
            return None
    assert row is not None
    return row


def _data(data: str | None, ok: bool | None) -> str | None:
    return str(data) if ok else None
