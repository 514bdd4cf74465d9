"""One access-log line and the metrics of every GraphQL operation (SPEC §5 Operations).

`OperationTelemetry` is the first extension of the schema, so it wraps all the others: its time
is the operation's whole time, and when it finishes the errors have their codes. For a
subscription "the operation" is its whole life, from ``subscribe`` to its end.

The log line (logger ``studio.access``) has the request id, the operation's type and name, the
viewer's id, the duration, the outcome and the error codes, and nothing the client sent besides
the name: never the variables (``signIn`` carries an id token in them) nor the document.

Outcomes: ``ok``; ``error`` (the operation ran and some error came back); ``rejected`` (the
document did not parse or validate, or the operation was refused before any resolver ran, e.g.
rate-limited); ``cancelled`` (the client went away first). A subscription that the client stops
is ``ok``. Only the names of documents that validated become metric labels.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast
from graphql.language import FieldNode
from starlette.websockets import WebSocket
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import StreamExecutionResult

from app.errors import StudioError
from app.observability.metrics import Metrics, OperationRecord
from app.state import AppState
from schema.context import Context

logger = logging.getLogger("studio.access")

#: Names longer than this are cut in the log (a valid GraphQL name can be very long).
LOGGED_NAME_LENGTH = 100

#: Refusals that the view answers with an HTTP status (400, 405) rather than a GraphQL error.
_HTTP_ERRORS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


class OperationTelemetry(SchemaExtension):
    _executed = False
    _streamed = False
    _subscription: str | None = None

    def on_operation(self) -> Iterator[None]:
        self._codes: list[str] = []
        if getattr(self.execution_context.context, "shared", False):
            # A shared subscription's run: each subscriber has its own `SubscriberTelemetry`.
            yield
            return
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            yield
        except BaseException as exc:  # recorded, then re-raised untouched
            failure = exc
            raise
        finally:
            self._finish(failure, time.perf_counter() - started)

    def on_execute(self) -> Iterator[None]:
        # Reached only by documents that parsed and validated.
        self._executed = True
        operation = self._operation()
        if getattr(self.execution_context.context, "shared", False):
            operation = None
        if operation is not None and operation.operation.value == "subscription":
            self._subscription = _root_field(operation)
            metrics = self._metrics()
            if metrics is not None:
                metrics.subscriptions.labels(self._subscription).inc()
                metrics.subscription_runs.labels(self._subscription).inc()
        yield

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self._streamed = True
        if isinstance(result, ExecutionResult) and result.errors:
            self._codes += [error_code(error) for error in result.errors]
        yield

    # --- the end of the operation -----------------------------------------------------------

    def _finish(self, failure: BaseException | None, seconds: float) -> None:
        if not self._streamed:
            errors = getattr(self.execution_context.result, "errors", None) or []
            self._codes += [error_code(error) for error in errors]
            if isinstance(failure, Exception) and not isinstance(failure, _HTTP_ERRORS):
                # Refused by an extension (a document over a limit, a rate limit): Strawberry
                # answers it as one error.
                self._codes.append(_failure_code(failure))
        operation = self._operation()
        operation_type = operation.operation.value if operation is not None else "unknown"
        name = operation.name.value if operation is not None and operation.name else None
        outcome = self._outcome(failure)
        metrics = self._metrics()
        if metrics is not None:
            if self._subscription is not None:
                metrics.subscriptions.labels(self._subscription).dec()
                metrics.subscription_runs.labels(self._subscription).dec()
            metrics.record_operation(
                OperationRecord(
                    operation_type,
                    name,
                    outcome,
                    seconds,
                    tuple(self._codes),
                    validated=self._executed,
                )
            )
        self._log(operation_type, name, outcome, seconds)

    def _outcome(self, failure: BaseException | None) -> str:
        if isinstance(failure, asyncio.CancelledError | GeneratorExit):
            if self._subscription is not None:
                return "error" if self._codes else "ok"
            return "cancelled"
        # Resolvers' errors end up in the result; an exception that comes out of the operation
        # was raised around the resolvers (by a limit or a rate limit) before any of them ran.
        if not self._executed or failure is not None:
            return "rejected"
        return "error" if self._codes else "ok"

    def _log(self, operation_type: str, name: str | None, outcome: str, seconds: float) -> None:
        context = self.execution_context.context
        viewer = getattr(context, "viewer", None)
        request = getattr(context, "request", None)
        log_operation(
            request_id=getattr(context, "request_id", None) or None,
            operation_type=operation_type,
            name=name,
            outcome=outcome,
            seconds=seconds,
            codes=self._codes,
            viewer_id=viewer.user_id if viewer is not None else None,
            transport="websocket" if isinstance(request, WebSocket) else "http",
            path=getattr(context, "read_path", "resolver"),
        )

    # --- helpers ------------------------------------------------------------------------------

    def _operation(self) -> OperationDefinitionNode | None:
        """The operation the request runs, if its document parsed and names one."""
        execution = self.execution_context
        if execution.graphql_document is None:
            return None
        try:
            return get_operation_ast(execution.graphql_document, execution.operation_name)
        except GraphQLError:
            return None

    def _metrics(self) -> Metrics | None:
        request = getattr(self.execution_context.context, "request", None)
        state = getattr(getattr(request, "app", None), "state", None)
        studio: Any = getattr(state, "studio", None)
        return studio.metrics if isinstance(studio, AppState) else None


class SubscriberTelemetry:
    """The log line and metrics of one subscriber of a shared subscription
    (`schema.transport.feeds`), as `OperationTelemetry` records an unshared one: open from
    `__init__` (it counts in the open subscriptions) to `finish`, outcome ``ok`` or ``error``
    from the codes of the results it was sent, ``path=shared``."""

    def __init__(self, context: Context, name: str | None, root: str, started: float) -> None:
        # What the line needs, not the context (its loaders and rows), kept for the whole life.
        self.request_id = context.request_id or None
        self.viewer_id = context.viewer.user_id if context.viewer is not None else None
        self.name = name
        self.root = root
        self.started = started
        self.codes: list[str] = []
        assert context.request is not None
        self.metrics = AppState.of(context.request).metrics
        self.metrics.subscriptions.labels(root).inc()

    def finish(self) -> None:
        seconds = time.perf_counter() - self.started
        outcome = "error" if self.codes else "ok"
        self.metrics.subscriptions.labels(self.root).dec()
        self.metrics.record_operation(
            OperationRecord("subscription", self.name, outcome, seconds, tuple(self.codes))
        )
        log_operation(
            request_id=self.request_id,
            operation_type="subscription",
            name=self.name,
            outcome=outcome,
            seconds=seconds,
            codes=self.codes,
            viewer_id=self.viewer_id,
            transport="websocket",
            path="shared",
        )


def log_operation(
    *,
    request_id: str | None,
    operation_type: str,
    name: str | None,
    outcome: str,
    seconds: float,
    codes: Sequence[str],
    viewer_id: uuid.UUID | None,
    transport: str,
    path: str,
) -> None:
    """The access log line of one operation (the module's docstring says what it holds)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    logged_name = name[:LOGGED_NAME_LENGTH] if name is not None else None
    duration_ms = round(seconds * 1000, 1)
    logger.info(
        "%s %s %s in %.1f ms%s",
        operation_type,
        logged_name or "(anonymous)",
        outcome,
        duration_ms,
        f" [{', '.join(codes)}]" if codes else "",
        extra={
            "request_id": request_id,
            "operation_type": operation_type,
            "operation_name": logged_name,
            "viewer_id": str(viewer_id) if viewer_id is not None else None,
            "duration_ms": duration_ms,
            "outcome": outcome,
            "error_codes": list(codes),
            "transport": transport,
            "path": path,
        },
    )


def error_code(error: GraphQLError) -> str:
    """The ``extensions.code`` the client gets for ``error`` (the rule of
    `schema.extensions.errors.coded_error`, without its logging: the error may not have been
    coded yet)."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, StudioError):
        return original.code
    if original is None or isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"
    return "INTERNAL"


def _failure_code(failure: Exception) -> str:
    if isinstance(failure, StudioError):
        return failure.code
    if isinstance(failure, GraphQLError):
        return error_code(failure)
    return "INTERNAL"


def _root_field(operation: OperationDefinitionNode) -> str:
    """A subscription's one root field (validation guarantees there is exactly one)."""
    selection = operation.selection_set.selections[0]
    return selection.name.value if isinstance(selection, FieldNode) else "unknown"
