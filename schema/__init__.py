"""The GraphQL schema (SPEC §4), assembled with the protections the settings ask for."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from app.settings import Settings
from schema.errors import ErrorCodes
from schema.mutations import Mutation
from schema.queries import Query
from schema.rate_limits import rate_limit_extensions
from schema.streaming import OperationContexts
from schema.subscriptions import Subscription
from schema.telemetry import OperationTelemetry
from schema.types.audit_event import AuditEvent
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video
from schema.types.voice_profile import VoiceProfile

# Implementations of Node that no field returns directly still belong in the schema.
NODE_TYPES = [User, Video, VoiceProfile, GenerationJob, AuditEvent]


class StudioSchema(strawberry.Schema):
    def process_errors(self, errors: object, execution_context: object = None) -> None:
        # `ErrorCodes` logs the unexpected errors (with the request id); expected ones
        # (NOT_FOUND, BAD_USER_INPUT …) are answers, not incidents, and are not logged.
        return None


def print_schema() -> str:
    """The SDL clients generate code from (committed as ``schema.graphql``)."""
    return str(create_schema()).rstrip() + "\n"


def create_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; ``settings`` sets the document limits (none when printing the SDL)."""
    # Extensions are made fresh for each operation (factories); the caches behind ParserCache
    # and ValidationCache are shared. The limit rules are built once, so that validation results
    # stay cacheable (the cache key includes the rule classes).
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        OperationTelemetry,  # first: it times the whole operation and sees the errors coded
        ErrorCodes,
        OperationContexts,  # websocket operations: a context (and session) of their own
        *rate_limit_extensions(settings),  # per user and per address, before any resolver
    ]
    if settings is not None:
        rules = [
            *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        ]
        max_tokens = settings.max_tokens
        extensions += [
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: AddValidationRules(rules),
        ]
    extensions += [lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)]
    return StudioSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=NODE_TYPES,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )
