"""Limits on the documents clients send (SPEC §5 "Limits"): an abusive document is refused before
anything of it runs, so before any SQL.

Every refusal is a ``BAD_USER_INPUT`` error whose ``extensions.limit`` names the limit. They are
checked in this order, the cheap ones first:

1. While parsing, with graphql-core's own parser options: ``characters`` (``STUDIO_MAX_CHARACTERS``,
   refused before the text is read) and ``tokens`` (``STUDIO_MAX_TOKENS``).
2. The document's shape (measured in `schema.extensions.document_measures`), before the
   schema's validation rules, which cost more: ``depth``, ``aliases``, ``directives`` and, when
   ``STUDIO_INTROSPECTION`` is off, ``introspection``.
   Fragments count every time they are spread, inline or reused (GHSA-fr49-mhgj-crfc); a cycle of
   fragments ends the walk (GHSA-qfwv-87qj-98xq) and is reported by validation.
3. The schema's validation. graphql-core's ``MaxIntrospectionDepthRule`` bounds the nesting of the
   introspection lists (``fields { type { fields … } }``), which the depth limit does not count;
   its refusal is reported as ``introspection`` too.
4. The operation's ``cost``, with its variables (README "Limits").

Parsing and steps 2 and 3 depend on the text alone and are cached (an LRU keyed by the text, which
``STUDIO_MAX_CHARACTERS`` keeps small); step 4 runs for every operation. `LimitDocuments` replaces
Strawberry's ``ParserCache`` and ``ValidationCache``: do not add those as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    get_operation_ast,
    parse,
)
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ParseOptions

from app.settings import Settings
from db.queries.pagination import DEFAULT_PAGE_SIZE
from schema.extensions.document_measures import operation_cost, operation_shapes

#: The code of every limit refusal: the document is the client's to fix (SPEC §4).
LIMIT_CODE = "BAD_USER_INPUT"


@dataclass(frozen=True)
class Limits:
    max_characters: int
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_directives: int
    max_cost: int
    introspection: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_characters=settings.max_characters,
            max_tokens=settings.max_tokens,
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_directives=settings.max_directives,
            max_cost=settings.max_cost,
            introspection=settings.introspection_enabled,
        )


def limits_extension(checker: DocumentChecker) -> Callable[[], SchemaExtension]:
    """The schema extension (a factory: one per operation, ``checker``'s caches shared by all)."""
    return lambda: LimitDocuments(checker)


def limit_error(limit: str, message: str, nodes: Sequence[Any] | None = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": LIMIT_CODE, "limit": limit})


def relabel_parser_limit(error: GraphQLError) -> GraphQLError:
    """graphql-core's parser reports a document over ``characters`` or ``tokens`` as a syntax
    error; this is it as a limit refusal (any other error is returned as it is)."""
    match = _PARSER_LIMIT.match(error.message)
    if match is None:
        return error
    count, unit = match.groups()
    limit = "characters" if unit == "code points" else "tokens"
    return GraphQLError(
        f"The document is over the limit of {count} {limit}.",
        source=error.source,
        positions=error.positions,
        extensions={"code": LIMIT_CODE, "limit": limit},
    )


class LimitDocuments(SchemaExtension):
    """Parses and validates with the limits (see the module's docstring)."""

    def __init__(self, checker: DocumentChecker) -> None:
        self.checker = checker
        self._cached_text: str | None = None

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        execution.parse_options = cast("ParseOptions", dict(self.checker.parse_options))
        if execution.query is not None and execution.graphql_document is None:
            try:
                execution.graphql_document = self.checker.parse(execution.query)
                self._cached_text = execution.query
            except GraphQLError:
                # Strawberry parses it again, with the same options, and reports the error. A
                # hook must not raise: on a websocket the error would never reach the client.
                pass
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        assert document is not None
        schema = execution.schema._schema
        rules = tuple(execution.validation_rules)
        if self._cached_text is not None:
            errors = list(self.checker.static_errors(self._cached_text, schema, rules))
        else:
            errors = self.checker.check(document, schema, rules)
        if not errors:
            variables = execution.variables if isinstance(execution.variables, Mapping) else {}
            errors = self.checker.cost_errors(schema, document, execution.operation_name, variables)
        # Set before Strawberry's own validation, which then does not run.
        execution.pre_execution_errors = errors
        yield


class DocumentChecker:
    """The limits, with the caches of parsed documents and of their static errors."""

    def __init__(self, limits: Limits, cache_size: int = 256) -> None:
        self.limits = limits
        # graphql-core's own limits (over them the parser stops with a syntax error), as
        # Strawberry passes them when it parses a document itself.
        self.parse_options: dict[str, int] = {
            "max_source_length": limits.max_characters,
            "max_lexical_tokens": limits.max_tokens,
        }
        self.parse = lru_cache(maxsize=cache_size)(self._parse)
        self.static_errors = lru_cache(maxsize=cache_size)(self._static_errors)

    def check(
        self,
        document: DocumentNode,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        """Steps 2 and 3: the shape limits, then (only if they pass) the schema's rules."""
        errors = shape_errors(document, self.limits)
        if errors or not rules:
            return errors
        rules = tuple(
            _IntrospectionDepth if rule is MaxIntrospectionDepthRule else rule for rule in rules
        )
        return validate_document(schema, document, rules)

    def cost_errors(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> list[GraphQLError]:
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return []
        cost = operation_cost(schema, document, operation, variables)
        if cost <= self.limits.max_cost:
            return []
        message = (
            f"The operation costs {cost}, over the limit of {self.limits.max_cost}: each field "
            "costs 1, and a connection's selection counts once for each item it may return "
            f"(`first` or `last`, else {DEFAULT_PAGE_SIZE})."
        )
        return [limit_error("cost", message, [operation])]

    def _parse(self, query: str) -> DocumentNode:
        return parse(
            query,
            max_source_length=self.limits.max_characters,
            max_lexical_tokens=self.limits.max_tokens,
        )

    def _static_errors(
        self, query: str, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> tuple[GraphQLError, ...]:
        return tuple(self.check(self.parse(query), schema, rules))


# --- the document's shape --------------------------------------------------------------------


def shape_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    measured = operation_shapes(document)
    if not measured:
        return []
    deepest, shape = max(measured, key=lambda pair: pair[1].depth)
    first = measured[0][0]
    errors = []
    if shape.depth > limits.max_depth:
        message = (
            f"The document nests fields {shape.depth} deep; at most {limits.max_depth} are allowed."
        )
        errors.append(limit_error("depth", message, [deepest]))
    for limit, allowed in [("aliases", limits.max_aliases), ("directives", limits.max_directives)]:
        count = sum(getattr(each, limit) for _, each in measured)
        if count > allowed:
            message = (
                f"The document has {count} {limit}, fragments counted each time they are "
                f"spread; at most {allowed} are allowed."
            )
            errors.append(limit_error(limit, message, [first]))
    introspection = next((each.introspection for _, each in measured if each.introspection), None)
    if introspection is not None and not limits.introspection:
        message = "Introspection (`__schema`, `__type`) is turned off on this server."
        errors.append(limit_error("introspection", message, [introspection]))
    return errors


class _IntrospectionDepth(MaxIntrospectionDepthRule):
    """graphql-core's bound on nested introspection lists, reported as a limit."""

    def report_error(self, error: GraphQLError) -> None:
        message = (
            "The introspection lists (`fields`, `interfaces`, `possibleTypes`, `inputFields`) "
            "are nested too deeply."
        )
        super().report_error(limit_error("introspection", message, error.nodes))


_PARSER_LIMIT = re.compile(
    r"^Syntax Error: (?:Source|Document) contains more than (\d+) (code points|tokens)\. "
    r"Parsing aborted\.$"
)
