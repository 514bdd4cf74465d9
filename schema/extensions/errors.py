"""One place where failures become GraphQL errors (SPEC §4).

* `app.errors.StudioError` (raised by `db/`, `app/` or resolvers): its message and
  ``extensions.code`` (plus ``field`` when it names an input field). One coded ``INTERNAL``
  (a known outage: the media storage is full, `app.media.StorageUnavailable`) keeps its
  message and carries the request id.
* Documents that do not parse or validate: ``BAD_USER_INPUT`` (a limit's refusal carries it
  already, with ``extensions.limit``, `schema.extensions.limits`).
* Anything else is a bug: logged with the request id and its traceback, and sent to the client
  as ``INTERNAL`` with only the request id — no message, no SQL, no stack. So is an error that
  arrives with a code outside SPEC §4's set: only those codes ever reach a client.

`strip_suggestions` takes graphql-core's "Did you mean …" hints out of messages: they reveal the
schema, so they go whenever introspection is off (`schema.StudioSchema`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.errors import SPEC_CODES, StudioError
from schema.extensions.limits import relabel_parser_limit

logger = logging.getLogger("studio.graphql")

INTERNAL_MESSAGE = "Internal error. Quote the request id when reporting it."


# graphql-core appends its hints as " Did you mean 'a', 'b' or 'c'?" (names never hold a '?').
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is None or not errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", None)
        result.errors = [coded_error(error, request_id) for error in errors]


def coded_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """``error`` as a client may see it; an error this made already is returned as it is (some
    paths code errors twice)."""
    if isinstance(error, _CodedError):
        return error
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    if isinstance(original, StudioError):
        extensions["code"] = original.code
        if original.field is not None:
            extensions["field"] = original.field
        if original.code == "INTERNAL":  # a known outage (storage full): said, with the id
            extensions["requestId"] = request_id
        return _copy(error, original.message, extensions)
    if original is None or isinstance(original, GraphQLError):
        error = relabel_parser_limit(error)
        extensions = dict(error.extensions or {})
        code = extensions.setdefault("code", "BAD_USER_INPUT")
        if code == "INTERNAL":  # coded so outside this module: masked all the same
            request_id = extensions.get("requestId") or request_id
            return _copy(error, INTERNAL_MESSAGE, {"code": "INTERNAL", "requestId": request_id})
        if code in SPEC_CODES:
            return _copy(error, error.message, extensions)
    logger.error(
        "unexpected error in %s",
        ".".join(str(part) for part in error.path or ()) or "operation",
        exc_info=original or error,
        extra={"request_id": request_id},
    )
    return _copy(error, INTERNAL_MESSAGE, {"code": "INTERNAL", "requestId": request_id})


def strip_suggestions(error: GraphQLError) -> None:
    """Remove the "Did you mean …" hints from ``error``'s message (in place, as Strawberry's own
    ``disable_field_suggestions`` does, so that every later copy is without them)."""
    error.message = _SUGGESTION.sub("", error.message)


class _CodedError(GraphQLError):
    """An error `coded_error` made: what the client sees."""


def _copy(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return _CodedError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )
