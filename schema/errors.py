"""One place where failures become GraphQL errors (SPEC §4).

* `app.errors.StudioError` (raised by `db/`, `app/` or resolvers): its message and
  ``extensions.code`` (plus ``field`` when it names an input field).
* Documents that do not parse or validate: ``BAD_USER_INPUT`` (a limit's rule may have set a
  code already; it is kept).
* Anything else is a bug: logged with the request id and its traceback, and sent to the client
  as ``INTERNAL`` with only the request id — no message, no SQL, no stack.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.errors import StudioError

logger = logging.getLogger("studio.graphql")

INTERNAL_MESSAGE = "Internal error. Quote the request id when reporting it."


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
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    if isinstance(original, StudioError):
        extensions["code"] = original.code
        if original.field is not None:
            extensions["field"] = original.field
        return _copy(error, original.message, extensions)
    if original is None or isinstance(original, GraphQLError):
        extensions.setdefault("code", "BAD_USER_INPUT")
        return _copy(error, error.message, extensions)
    logger.error(
        "unexpected error in %s",
        ".".join(str(part) for part in error.path or ()) or "operation",
        exc_info=original,
        extra={"request_id": request_id},
    )
    return _copy(error, INTERNAL_MESSAGE, {"code": "INTERNAL", "requestId": request_id})


def _copy(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )
