"""Operations answered by their compiled statement before, answered again without Strawberry.

Once an HTTP query has been answered on the compiled path, its document is known to parse, to
pass the shape limits and the schema's validation (both depend on the text alone), and to name a
query operation. `KnownReads` remembers it by its text and operation name. When the same
operation arrives again (a POST with a JSON body, the way clients and GraphiQL send queries), the
view asks `KnownReads.answer` first, which does what the extensions would do for it and nothing
else:

* the caller: signed in with a token that verified (the middleware's work), else not known;
* the variables coerced against the operation (graphql-core's own ``get_variable_values``);
* the ``cost`` limit with those variables (`schema.limits.DocumentChecker.cost_errors`);
* the rate limits charged, as `schema.rate_limits.RateLimitCheck` charges a query;
* the plan for those variables (`schema.compiled.cache.PlanCache`), its statement run as on the
  full path (`schema.compiled.extension.run_plan`: one statement, no ``BEGIN``);
* the access log line and the operation metrics, as `schema.telemetry` writes them.

Anything unusual hands the request to the full path untouched: a body of another shape, an
unknown document, variables that do not coerce, an operation over its cost or its rate, a plan
that rules the values out, a statement whose ``ok`` says a resolver would answer an error, a
statement that fails in the database (the full path then tries it once more, then resolves).
The full path then answers (and reports) exactly what it always did; `answer` has charged
nothing for a request it hands over, except a rate-limit check that refused (the full path
checks again and refuses).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLSchema, OperationDefinitionNode
from graphql.execution.values import VariableValues, get_variable_values
from starlette.requests import Request

from app.middleware import scope_viewer
from app.observability.metrics import OperationRecord
from app.rate_limit import RateLimiter, charges_for, client_address
from app.state import AppState
from schema import client_json
from schema.compiled.cache import PlanCache, plan_key
from schema.compiled.extension import run_plan
from schema.compiled.plan import Plan
from schema.compiled.sql import Fallback
from schema.limits import DocumentChecker
from schema.loaders import SessionGate
from schema.relay import cursor_secret
from schema.streaming import autocommits
from schema.telemetry import log_operation

logger = logging.getLogger(__name__)

#: Operations remembered per process, least recently used first out.
KNOWN_OPERATIONS = 256

#: The body of a request `answer` takes: nothing but these members.
_MEMBERS = frozenset({"query", "variables", "operationName"})


@dataclass(frozen=True)
class KnownOperation:
    document: DocumentNode
    operation: OperationDefinitionNode

    @property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None


class KnownReads:
    def __init__(
        self,
        plans: PlanCache,
        checker: DocumentChecker,
        limiter: RateLimiter | None,
        *,
        max_json_depth: int,
        size: int = KNOWN_OPERATIONS,
    ) -> None:
        self.plans = plans
        self.checker = checker
        self.limiter = limiter
        self.max_json_depth = max_json_depth
        self.size = size
        #: How many requests `answer` answered (the rest went to the full path).
        self.answered = 0
        self._known: OrderedDict[tuple[str, str | None], KnownOperation] = OrderedDict()

    def learn(
        self,
        query: str,
        operation_name: str | None,
        document: DocumentNode,
        operation: OperationDefinitionNode,
    ) -> None:
        """``query``'s operation ``operation_name`` was answered on the compiled path. A document
        of one operation is known without the name too (a request need not send it)."""
        known = KnownOperation(document, operation)
        keys = [(query, operation_name)]
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) == 1:
            keys.append((query, None))
        for key in keys:
            self._known[key] = known
            self._known.move_to_end(key)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)

    async def answer(self, request: Request, schema: GraphQLSchema) -> str | None:
        """The response's ``data`` as JSON text, or ``None``: the full path answers."""
        started = time.perf_counter()
        viewer, auth_error = scope_viewer(request.scope)
        if viewer is None or auth_error is not None:
            return None
        request_data = self._request_data(await request.body())
        if request_data is None:
            return None
        query, variables, operation_name = request_data
        known = self._known.get((query, operation_name))
        if known is None:
            return None
        coerced = get_variable_values(schema, known.operation.variable_definitions or (), variables)
        if not isinstance(coerced, VariableValues):
            return None
        if self.checker.cost_errors(schema, known.document, known.name, variables):
            return None
        _, plan = self.plans.get(plan_key(query, known.name, variables, coerced))
        if plan is None:  # not planned for these values yet, or not compilable with them
            return None
        state = AppState.of(request)
        cursor_key = cursor_secret(state.settings.secret_key)
        try:
            params = plan.parameters(coerced, viewer.user_id, cursor_key)
        except Fallback:
            return None
        if self.limiter is not None:
            charges = charges_for(
                self.limiter.rates, client=client_address(request.scope), user_id=viewer.user_id
            )
            if await self.limiter.check(state.engine, charges) is not None:
                return None
        data = await _fetch(state, plan, params)
        if data is None:
            return None
        self.answered += 1
        seconds = time.perf_counter() - started
        state.metrics.record_operation(
            OperationRecord("query", known.name, "ok", seconds, (), validated=True)
        )
        log_operation(
            request_id=request.scope.get("state", {}).get("request_id"),
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

    def _request_data(self, body: bytes) -> tuple[str, dict[str, Any], str | None] | None:
        try:
            data = client_json.loads(body.decode("utf-8"), max_depth=self.max_json_depth)
        except ValueError:  # not UTF-8, not JSON, too deep: the full path says which
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


async def _fetch(state: AppState, plan: Plan, params: dict[str, Any]) -> str | None:
    """The statement's ``data`` (`run_plan`), in a session of the operation's own (so a test's
    session bound to its transaction sees that transaction)."""
    async with state.sessionmaker() as session:
        gate = SessionGate(session)
        gate.reads_only(autocommit=autocommits(state.settings))
        try:
            return await run_plan(gate, plan, params)
        finally:
            await gate.close()
