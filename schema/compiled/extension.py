"""The hook that answers a query operation with its compiled statement, or leaves it alone.

`CompiledReads` is the schema's last extension, so its ``on_execute`` runs innermost: the
document is parsed, validated and within the limits, and the rate limits have charged it, as
for any operation. Setting ``execution_context.result`` before the ``yield`` makes Strawberry
skip graphql-core's execution; anything the compiled path does not answer identically
(`Fallback`, or a statement whose ``ok`` says a resolver would report an error) goes on to the
resolvers untouched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast
from graphql.execution.values import VariableValues, get_variable_values
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.compiled.cache import PlanCache, plan_key
from schema.compiled.documents import stopped_to_resolve
from schema.compiled.json_text import RawJSON
from schema.compiled.plan import Builder, Plan
from schema.compiled.sql import Fallback
from schema.context import Context
from schema.loaders import SessionGate

if TYPE_CHECKING:
    from schema.compiled.known import KnownReads

logger = logging.getLogger(__name__)

COMPILED = "compiled"
RESOLVER = "resolver"


class CompiledReads(SchemaExtension):
    def __init__(self, cache: PlanCache, known: KnownReads | None = None) -> None:
        self.cache = cache
        self.known = known

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
        key = plan_key(execution.query, execution.operation_name, given, coerced)
        found, plan = self.cache.get(key)
        if not found:
            plan = _plan(schema, document, operation, coerced)
            self.cache.put(key, plan)
        if plan is None:
            return None
        try:
            params = plan.parameters(coerced, context.viewer.user_id, context.settings)
        except Fallback:
            return None
        data = await run_plan(context.gate, plan, params)
        if data is None:
            return None
        if self.known is not None:  # served without the extensions next time
            self.known.learn(execution.query, execution.operation_name, document, operation)
        return data


def _plan(
    schema: Any, document: Any, operation: OperationDefinitionNode, variables: VariableValues
) -> Plan | None:
    try:
        return Builder(schema, document, operation, variables).build()
    except Fallback:
        return None


async def run_plan(gate: SessionGate, plan: Plan, params: dict[str, Any]) -> str | None:
    """The statement's ``data`` (JSON text); ``None`` when a resolver would answer an error, or
    when the statement failed in the database (logged; the resolvers answer instead). A dead
    connection is the gate's to handle (it runs the statement again on a new one)."""
    return await gate.run(_execute, plan, params)


async def _execute(session: AsyncSession, plan: Plan, params: dict[str, Any]) -> str | None:
    connection = await session.connection()
    try:
        result = await connection.exec_driver_sql(
            plan.positional_sql, tuple(plan.positional(params))
        )
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        if stopped_to_resolve(exc):
            logger.debug("a stored value the statement does not translate: resolving instead")
        else:
            logger.warning("a compiled statement failed, resolving instead: %s", exc.orig)
        await session.rollback()  # the session's transaction, if any, is usable again
        return None
    data, ok = cast("tuple[str, bool]", tuple(result.one()))
    return str(data) if ok else None
