"""The rate-limit check, before any resolver runs (SPEC §4 ``RATE_LIMITED``; app/rate_limit.py).

`RateLimitCheck` is a schema extension: in ``on_execute``, once the document is parsed and
validated and before execution starts, it charges the operation's buckets. A refused operation
runs no resolver and so writes nothing; its error carries ``extensions.retryAfter`` (seconds),
and over HTTP the response also carries ``Retry-After``. The check uses a short autocommit
connection of its own, never the operation's session (which a failed mutation rolls back).

Documents that do not parse or validate never reach it: they are refused before execution and
touch no data. Over websockets every operation (a subscription included) is checked once, when
it starts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from app.rate_limit import RateLimiter, RateLimitExceeded, Rates, charges_for, client_address
from app.settings import Settings
from app.state import AppState
from schema.context import Context


def rate_limiter(settings: Settings | None) -> RateLimiter | None:
    """The process's limiter; none when limits are off (or for the SDL)."""
    if settings is None or not settings.rate_limit_enabled:
        return None
    return RateLimiter(Rates.from_settings(settings))


def rate_limit_extensions(limiter: RateLimiter | None) -> list[Callable[[], SchemaExtension]]:
    """The extension for `schema.create_schema`, charging ``limiter`` (none without one)."""
    if limiter is None:
        return []
    return [lambda: RateLimitCheck(limiter)]


class RateLimitCheck(SchemaExtension):
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if getattr(context, "request", None) is None or getattr(context, "shared", False):
            # Executed in-process without a client (no address, no app), or a shared
            # subscription's run, whose subscribers are charged one by one (`charge`).
            yield
            return
        fields: Counter[str] = Counter()
        if execution.operation_type is OperationType.MUTATION:
            assert execution.graphql_document is not None
            fields = _root_fields(execution.graphql_document, execution.operation_name)
        retry_after = await charge(self.limiter, context, fields)
        if retry_after is not None:
            if isinstance(context.response, Response):  # HTTP (a websocket has no headers)
                context.response.headers["Retry-After"] = str(retry_after)
            raise RateLimitExceeded(retry_after)
        yield


async def charge(
    limiter: RateLimiter, context: Context, fields: Counter[str] | None = None
) -> int | None:
    """Charge one operation of ``context``'s caller (its address and, signed in, its user;
    ``fields``: its root fields, for a mutation): ``None`` when it may run, else the seconds to
    wait."""
    request = context.request
    assert request is not None
    fields = fields or Counter()
    viewer = context.viewer
    charges = charges_for(
        limiter.rates,
        client=client_address(request.scope),
        user_id=viewer.user_id if viewer is not None else None,
        sign_ins=fields["signIn"],
        generations=fields["startGeneration"],
    )
    return await limiter.check(AppState.of(request).engine, charges)


def _root_fields(document: DocumentNode, operation_name: str | None) -> Counter[str]:
    """How many times each root field will run: once per response key (alias or name), since
    GraphQL merges equal fields into one (``{ signIn(…) signIn(…) }`` runs it once, ``{ a:
    signIn(…) b: signIn(…) }`` twice). ``@skip``/``@include`` are not evaluated: a skipped field
    still counts."""
    operation = get_operation_ast(document, operation_name)
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    response_keys: dict[str, str] = {}
    if operation is not None:
        _collect(operation.selection_set, fragments, response_keys, seen=set())
    return Counter(response_keys.values())


def _collect(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    response_keys: dict[str, str],
    seen: set[str],
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            response_keys[key] = selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set, fragments, response_keys, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # a fragment adds its fields once
                seen.add(name)
                _collect(fragments[name].selection_set, fragments, response_keys, seen)
