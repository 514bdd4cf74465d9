"""The GraphQL schema (SPEC §4), assembled with the protections the settings ask for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.rate_limit import RateLimiter
from app.settings import Settings
from schema.compiled import KnownReads, PlanCache, compiled_reads_extension
from schema.execution import StudioExecutor
from schema.extensions.errors import ErrorCodes, strip_suggestions
from schema.extensions.limits import DocumentChecker, Limits, limits_extension
from schema.extensions.rate_limits import rate_limit_extensions, rate_limiter
from schema.extensions.telemetry import OperationTelemetry
from schema.mutations import Mutation
from schema.plain_fields import unwrap_plain_fields
from schema.queries import Query
from schema.relay import cursor_secret
from schema.subscriptions import Subscription
from schema.transport.http_protocol import RequestPhase
from schema.transport.streaming import OperationContexts
from schema.types.audit_event import AuditEvent
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile

# Implementations of Node that no field returns directly still belong in the schema.
NODE_TYPES = [User, Video, VoiceProfile, GenerationJob, AuditEvent]


class StudioSchema(strawberry.Schema):
    #: Operations the compiled path answered, answered again without the extensions (the view
    #: asks it first); none when the compiled path is off.
    known_reads: KnownReads | None = None
    #: The rate limits its operations are charged to (none when they are off); a shared
    #: subscription charges each subscriber here (`schema.transport.feeds`).
    rate_limiter: RateLimiter | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.exception_handlers:  # a handler needs Strawberry's wrapper around each field
            unwrap_plain_fields(self._schema, default_resolver=self.config.default_resolver)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # `ErrorCodes` logs the unexpected errors (with the request id); expected ones
        # (NOT_FOUND, BAD_USER_INPUT …) are answers, not incidents, and are not logged.
        # Every error of every transport passes here first: the place to drop the hints that
        # reveal the schema (Strawberry's own option only drops those of unknown fields).
        if self.config.disable_field_suggestions:
            for error in errors:
                strip_suggestions(error)


def print_schema() -> str:
    """The SDL clients generate code from (committed as ``schema.graphql``)."""
    return str(create_schema()).rstrip() + "\n"


def create_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; ``settings`` sets the document limits (none when printing the SDL)."""
    # Extensions are made fresh for each operation (factories); the caches behind them (parsed
    # and validated documents, schema/extensions/limits.py) are shared.
    limiter = rate_limiter(settings)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        OperationTelemetry,  # first: it times the whole operation and sees the errors coded
        ErrorCodes,
        OperationContexts,  # websocket operations: a context (and session) of their own
        # How far an HTTP request's operation got (parsed, validated): its status depends on it.
        RequestPhase,
        *rate_limit_extensions(limiter),  # per user and per address, before any resolver
    ]
    known: KnownReads | None = None
    if settings is not None:
        checker = DocumentChecker(Limits.from_settings(settings))
        # Parses and validates within the limits (and caches both), before any resolver.
        extensions.append(limits_extension(checker))
        if settings.compiled_reads:
            known = KnownReads(
                PlanCache(),
                checker,
                limiter,
                max_json_depth=settings.max_json_depth,
                cursor_key=cursor_secret(settings.secret_key),
            )
            # Last: its `on_execute` runs innermost, after the limits and rate limits.
            extensions.append(compiled_reads_extension(known))
    schema = StudioSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=extensions,
        # Plain reads (most fields of a large page) skip graphql-core's per-field machinery.
        execution_context_class=StudioExecutor,
        config=StrawberryConfig(
            auto_camel_case=True,
            # "Did you mean …" reveals the schema: hinted only where introspection answers.
            disable_field_suggestions=settings is not None and not settings.introspection_enabled,
            # One operation per request: a JSON array body is refused (400).
            batching_config=None,
        ),
    )
    schema.known_reads = known
    schema.rate_limiter = limiter
    return schema
