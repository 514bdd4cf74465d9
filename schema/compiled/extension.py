"""The hook that answers a query operation with its compiled statement, or leaves it alone.

`CompiledReads` is the schema's last extension, so its ``on_execute`` runs innermost: the
document is parsed, validated and within the limits, and the rate limits have charged it, as
for any operation. Setting ``execution_context.result`` before the ``yield`` makes Strawberry
skip graphql-core's execution; anything the compiled path does not answer identically
(`Fallback`, or a statement whose ``ok`` says a resolver would report an error) goes on to the
resolvers untouched.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from enum import Enum
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast
from graphql.execution.values import VariableValues, get_variable_values
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.compiled.json_text import RawJSON
from schema.compiled.plan import Builder, Plan
from schema.compiled.sql import Fallback
from schema.context import Context

#: Plans kept per process (each is a few KB of SQL text).
PLAN_CACHE_SIZE = 256

COMPILED = "compiled"
RESOLVER = "resolver"


class PlanCache:
    """Plans by (document, operation, variables given, the values that shape the statement);
    least recently used first out. A document that does not compile is cached as ``None``."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.size = size
        self._plans: OrderedDict[Hashable, Plan | None] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, Plan | None]:
        if key not in self._plans:
            return False, None
        self._plans.move_to_end(key)
        return True, self._plans[key]

    def put(self, key: Hashable, plan: Plan | None) -> None:
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)

    def __len__(self) -> int:
        return len(self._plans)


class CompiledReads(SchemaExtension):
    def __init__(self, cache: PlanCache) -> None:
        self.cache = cache

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if (
            isinstance(context, Context)
            and execution.operation_type is OperationType.QUERY
            and context.request is not None
            and context.request.scope.get("type") == "http"
        ):
            data = await self._answer(context)
            if data is not None:
                context.read_path = COMPILED
                execution.result = GraphQLExecutionResult(data=RawJSON(data), errors=None)  # type: ignore[arg-type]
        yield

    async def _answer(self, context: Context) -> str | None:
        execution = self.execution_context
        # Signed out, or with refused credentials, reads answer errors or nulls field by field.
        if context.viewer is None or context.auth_error is not None:
            return None
        document = execution.graphql_document
        assert document is not None
        assert execution.query is not None
        try:
            operation = get_operation_ast(document, execution.operation_name)
        except GraphQLError:
            return None
        if operation is None:
            return None
        schema = execution.schema._schema
        given = execution.variables or {}
        coerced = get_variable_values(schema, operation.variable_definitions or (), given)
        if not isinstance(coerced, VariableValues):
            return None  # the executor reports the variables' errors
        key = (
            execution.query,
            execution.operation_name,
            frozenset(given),
            _shape(coerced.coerced),
        )
        found, plan = self.cache.get(key)
        if not found:
            plan = _plan(schema, document, operation, coerced)
            self.cache.put(key, plan)
        if plan is None:
            return None
        try:
            params = plan.parameters(coerced, context)
        except Fallback:
            return None
        row = await context.gate.run(_run, plan.sql, params)
        data, ok = row
        return data if ok else None


def _plan(
    schema: Any, document: Any, operation: OperationDefinitionNode, variables: VariableValues
) -> Plan | None:
    try:
        return Builder(schema, document, operation, variables).build()
    except Fallback:
        return None


async def _run(session: AsyncSession, sql: str, params: dict[str, Any]) -> tuple[str, bool]:
    result = await session.execute(text(sql), params)
    data, ok = result.one()
    return str(data), bool(ok)


def _shape(values: dict[str, Any]) -> Hashable:
    """What of the variables' values the statement depends on: booleans (``@include``), enums
    and input objects (``orderBy``) by value, everything else by whether it is null (a null
    ``after`` has no cursor predicate; a given one has)."""

    def one(value: Any) -> Hashable:
        if value is None or isinstance(value, bool | Enum):
            return value
        if isinstance(value, dict):
            return tuple(sorted((key, one(item)) for key, item in value.items()))
        if isinstance(value, list):
            return tuple(one(item) for item in value)
        return "given"

    return tuple(sorted((name, one(value)) for name, value in values.items()))
