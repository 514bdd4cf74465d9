"""GraphQL over HTTP: which media type answers a request, and with which status code.

The rules come from the GraphQL over HTTP specification
(https://graphql.github.io/graphql-over-http/draft/); the README's "GraphQL over HTTP" section has
the table. In short:

* Responses are ``application/graphql-response+json`` or ``application/json``, chosen from the
  request's ``Accept`` (a request without one, or with only wildcards, gets ``application/json``,
  which every client reads); an ``Accept`` naming neither is refused with 406.
* Under ``application/json`` every well-formed request is answered 200, GraphQL errors or not
  (intermediaries may invent a 4xx/5xx ``application/json`` body; a 200 is the server's own).
* Under ``application/graphql-response+json`` a *request error* (nothing was executed, so the
  response has no ``data``) gets a 4xx/5xx: 400 for a document that does not parse, an operation
  that cannot be determined or variables that do not coerce; 422 for a document that parses but
  does not validate (the schema's rules and the depth/alias limits); 429 for an operation the rate
  limit refused, 500 for an unexpected failure before execution. Once execution has started, the
  answer is 200, even with ``data: null``.
* Requests that are not GraphQL-over-HTTP requests at all are refused alike under both types:
  400 (bad JSON, missing or mistyped parameters), 405 + ``Allow`` (a mutation over GET, or a
  method other than GET/POST), 415 (a body that is neither JSON nor multipart).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

from cross_web import StarletteRequestAdapter
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.types.execution import ExecutionResult, PreExecutionError

from app.request_context import RequestState

GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"
JSON: Final = "application/json"

#: The ``Content-Type`` each response media type is sent with. JSON is UTF-8 by definition
#: (RFC 8259 defines no ``charset`` for application/json); the newer type names it, as the
#: specification's examples do.
CONTENT_TYPES: Final = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    JSON: JSON,
}

#: The GraphQL multipart request spec (uploads), read besides JSON.
MULTIPART: Final = "multipart/form-data"

_UTF8 = frozenset({"utf-8", "utf8"})

#: Request errors whose ``extensions.code`` has an HTTP status of its own, first match wins:
#: an unexpected failure before execution, an operation the rate limit refused before it ran.
_STATUS_BY_CODE: Final = {"INTERNAL": 500, "RATE_LIMITED": 429}

#: How far an HTTP request's operation got, as `RequestPhase` records it (`RequestState.phase`).
PARSED: Final = "parsed"
VALIDATED: Final = "validated"


class RequestRefused(Exception):
    """A request answered with an HTTP error before (or instead of) executing anything."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "BAD_USER_INPUT",
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def body(self) -> bytes:
        """A GraphQL response with the one request error (no ``data``: nothing ran)."""
        error = {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
        return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


@lru_cache(maxsize=64)  # clients send a few distinct values, again and again
def response_media_type(accept: str | None) -> str:
    """The media type to answer in, per ``Accept`` (RFC 9110 §12.5.1); `RequestRefused` (406)
    when it names neither type.

    The most specific range decides each type's quality. Among equals, a type the client named
    wins over one it reached through a wildcard, and ``application/graphql-response+json`` wins
    between two named ones; through wildcards alone (``*/*``) it is ``application/json``.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = [_parse_media_type(part) for part in accept.split(",") if part.strip()]
    ranked: list[tuple[float, int, int, str]] = []
    for media_type in (GRAPHQL_RESPONSE_JSON, JSON):
        quality, specificity = _quality(media_type, ranges)
        if quality > 0:
            named = specificity == 2
            preferred = (media_type == GRAPHQL_RESPONSE_JSON) == named
            ranked.append((quality, specificity, int(preferred), media_type))
    if not ranked:
        raise RequestRefused(
            406,
            f"This endpoint answers {GRAPHQL_RESPONSE_JSON} or {JSON} (UTF-8); the Accept "
            "header names neither (nor */*). Subscriptions are served over websockets "
            "(graphql-transport-ws or graphql-ws) at this same URL.",
        )
    return max(ranked)[3]


def check_request_content_type(content_type: str | None) -> None:
    """`RequestRefused` (415) unless a POST body is UTF-8 JSON or a multipart upload."""
    media_type, params = _parse_media_type(content_type or "")
    charset = params.get("charset")
    if media_type == JSON and (charset is None or charset.lower() in _UTF8):
        return
    if media_type == MULTIPART:
        return
    shown = (content_type or "").strip() or "(none)"
    raise RequestRefused(
        415,
        f"Unsupported Content-Type {shown}: send the operation as {JSON} (UTF-8), or as "
        f"{MULTIPART} (the GraphQL multipart request spec) with files.",
    )


def check_json_body(body: bytes) -> None:
    """`RequestRefused` (400) unless a JSON body is an object (or a list: a batch, which is
    refused later); Strawberry would call ``.get`` on any other JSON value."""
    if body.lstrip()[:1] not in (b"{", b"["):
        raise RequestRefused(400, 'The request body must be a JSON object: {"query": "…", …}.')


def operations_with_files(
    form: Mapping[str, object],
    files: Mapping[str, object],
    parse_json: Callable[[str], object],
) -> dict[str, Any]:
    """The operation of a GraphQL multipart request, its files in place (`RequestRefused`, 400,
    for fields of the wrong shape: https://github.com/jaydenseric/graphql-multipart-request-spec).
    """
    operations = parse_json(_form_text(form, "operations"))
    files_map = parse_json(_form_text(form, "map"))
    if not isinstance(operations, dict):
        raise RequestRefused(400, "The multipart field `operations` must be a JSON object.")
    if not isinstance(files_map, dict) or not all(
        isinstance(paths, list) and all(isinstance(path, str) for path in paths)
        for paths in files_map.values()
    ):
        raise RequestRefused(
            400, "The multipart field `map` must map each file's field to a list of paths."
        )
    missing = sorted(name for name in files_map if name not in files)
    if missing:
        raise RequestRefused(400, f"File(s) missing in form data: {', '.join(missing)}.")
    try:
        return replace_placeholders_with_files(operations, files_map, files)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise RequestRefused(400, "A path in `map` names no variable of the operation.") from exc


class RequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of a Starlette request, with the media type of ``Content-Type`` in
    lower case (media types are case-insensitive; Strawberry compares them as written)."""

    @property
    def content_type(self) -> str | None:
        value = super().content_type
        if value is None:
            return None
        media_type, separator, parameters = value.partition(";")
        return media_type.strip().lower() + separator + parameters


def is_request_error(result: ExecutionResult) -> bool:
    """Whether nothing was executed: no ``data``, and no error raised at a field (a ``path``).

    Execution that fails at a non-null root field also ends with ``data: null``, but its errors
    carry paths; that is a partial response, answered 200.
    """
    errors = result.errors or []
    return result.data is None and bool(errors) and not any(error.path for error in errors)


def request_error_status(result: ExecutionResult, phase: str | None) -> int:
    """The status of a request error under ``application/graphql-response+json``, by how far
    the operation got (`RequestPhase`): a document that does not parse (``None``) is 400, one
    that does not validate 422; one refused after validation (variables that do not coerce, a
    subscription over HTTP) 400, unless its code says more (`_STATUS_BY_CODE`)."""
    for code, status in _STATUS_BY_CODE.items():
        if any((error.extensions or {}).get("code") == code for error in result.errors or []):
            return status
    if phase == PARSED and isinstance(result, PreExecutionError):
        return 422
    return 400


class RequestPhase(SchemaExtension):
    """Records on an HTTP request how far its operation got: `PARSED` once the document has
    parsed (and its operation was found), `VALIDATED` once it has passed validation.

    Strawberry answers parse and validation failures alike (a `PreExecutionError`); the status
    code tells them apart. Websocket operations are not recorded.
    """

    def on_validate(self) -> Iterator[None]:
        self._record(PARSED)
        yield
        if not self.execution_context.pre_execution_errors:
            self._record(VALIDATED)

    def _record(self, phase: str) -> None:
        request = getattr(self.execution_context.context, "request", None)
        if isinstance(request, Request):
            RequestState.of(request.scope).phase = phase


def _form_text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "{}")
    if not isinstance(value, str):  # sent as a file
        raise RequestRefused(400, f"The multipart field `{name}` must be a plain form field.")
    return value


def _parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lower case and its parameters (names lower case, values unquoted)."""
    media_type, *parameters = value.split(";")
    params: dict[str, str] = {}
    for parameter in parameters:
        name, _, raw = parameter.partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    return media_type.strip().lower(), params


def _quality(media_type: str, ranges: list[tuple[str, dict[str, str]]]) -> tuple[float, int]:
    """The quality the most specific matching range gives ``media_type``, and that range's
    specificity (2 named, 1 ``type/*``, 0 ``*/*``); ``(0, -1)`` when none matches."""
    kind = media_type.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for media_range, params in ranges:
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if specificity is None or specificity < best[0]:
            continue
        charset = params.get("charset")
        if charset is not None and charset.lower() not in _UTF8 and charset != "*":
            continue  # responses are UTF-8 only
        best = (specificity, _q(params.get("q")))
    return best[1], best[0]


def _q(value: str | None) -> float:
    if value is None:
        return 1.0
    try:
        quality = float(value)
    except ValueError:
        return 0.0  # a malformed weight is ignored, not guessed at
    return min(max(quality, 0.0), 1.0)
