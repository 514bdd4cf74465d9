"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/), one test per area of
the ``graphql-http`` audit suite (ids in brackets), with the requirement as docstring.

The suite itself runs against a real ``studio serve`` in ``tests/spec/test_graphql_http_audit.py``;
these tests pin the studio's own choices (README, "GraphQL over HTTP"): 405 + ``Allow`` for a
mutation over GET, 406, 415, 413, and 422 for validation failures under
``application/graphql-response+json``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types.execution import PreExecutionError

from app.auth import issue_access_token
from app.settings import Settings
from db.models import AuditEvent, VoiceProfile
from schema.transport import http_protocol
from tests.factories import make_user

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
BOTH = [GRAPHQL_RESPONSE, JSON]

CREATE = 'mutation { createVoiceProfile(input: {name: "Sneaky"}) { voiceProfile { id } } }'
TYPE_QUERY = "query Type($name: String!) { __type(name: $name) { name } }"
UNPARSABLE = "{"
UNKNOWN_FIELD = "{ __typename shoeSize }"
COERCION_FAILURE = "query ($name: String!) { __type(name: $name) { name } }"


@pytest.fixture
async def bearer(session: AsyncSession, settings: Settings) -> dict[str, str]:
    user = await make_user(session)
    await session.commit()
    return {"Authorization": f"Bearer {issue_access_token(settings, user.id).token}"}


async def post(
    http: httpx.AsyncClient,
    body: object,
    *,
    accept: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    all_headers = {"Content-Type": "application/json"} | (headers or {})
    if accept is not None:
        all_headers["Accept"] = accept
    return await http.post("/graphql", content=json.dumps(body), headers=all_headers)


async def get(
    http: httpx.AsyncClient, params: dict[str, str], *, accept: str | None = None, **kw: Any
) -> httpx.Response:
    headers = kw.pop("headers", {}) | ({"Accept": accept} if accept else {})
    return await http.get("/graphql", params=params, headers=headers)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";", 1)[0].strip()


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def written(session: AsyncSession) -> tuple[int, int]:
    profiles = await session.scalar(select(func.count()).select_from(VoiceProfile))
    events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(profiles or 0), int(events or 0)


# --- media types and Accept -------------------------------------------------------------------


async def test_graphql_response_json_is_served_when_accepted(http: httpx.AsyncClient) -> None:
    """[22EB] SHOULD accept application/graphql-response+json and match the content-type; the
    server SHOULD indicate the encoding."""
    response = await post(http, {"query": "{ __typename }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "Accept" in response.headers["vary"]  # the type depends on it
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_application_json_is_served_when_accepted(http: httpx.AsyncClient) -> None:
    """[4655, 2C94, 03D4] MUST accept application/json POST requests and match the
    content-type."""
    response = await post(http, {"query": "{ __typename }"}, accept=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/*", "*/*;q=0.5"])
async def test_no_accept_or_wildcards_get_application_json(
    http: httpx.AsyncClient, accept: str | None
) -> None:
    """[47DE, 80D8] SHOULD accept */* and use application/json; SHOULD assume application/json
    when Accept is missing (what every legacy client reads)."""
    response = await post(http, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200
    assert media_type(response) == JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.9", JSON),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),
        (f"text/html, {GRAPHQL_RESPONSE};q=0.1", GRAPHQL_RESPONSE),
        (f"*/*, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=iso-8859-1, {JSON}", JSON),
        ("multipart/mixed;deferSpec=20220824, application/json", JSON),
    ],
)
async def test_the_highest_priority_supported_type_answers(
    http: httpx.AsyncClient, accept: str, expected: str
) -> None:
    """If an Accept header is provided, the server MUST respect it and attempt to encode the
    response in the highest priority media type listed that it supports (named types over
    wildcards; application/graphql-response+json between equals)."""
    response = await post(http, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200
    assert media_type(response) == expected


@pytest.mark.parametrize(
    "accept",
    ["text/xml", "text/html", "multipart/mixed", f"{JSON}; charset=latin1", f"{JSON};q=0"],
)
async def test_an_accept_naming_no_supported_type_is_406_and_runs_nothing(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str], accept: str
) -> None:
    """When a client does not include at least one supported media type in Accept, the server
    MUST either respond 406 Not Acceptable and stop processing (RECOMMENDED), or disregard it."""
    before = await written(session)
    response = await post(http, {"query": CREATE}, accept=accept, headers=bearer)
    assert response.status_code == 406
    assert media_type(response) == JSON
    assert codes(response) == ["BAD_USER_INPUT"]
    assert GRAPHQL_RESPONSE in response.json()["errors"][0]["message"]
    assert await written(session) == before


async def test_graphiql_is_still_served_to_a_browser(http: httpx.AsyncClient) -> None:
    """A browser asking for the page (Accept: text/html, no query) gets GraphiQL, not a 406."""
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert media_type(response) == "text/html"


# --- encoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [JSON, f"{JSON}; charset=utf-8", f"{JSON};charset=UTF-8"])
async def test_utf8_requests_are_read_with_or_without_a_charset(
    http: httpx.AsyncClient, content_type: str
) -> None:
    """[BF61, 78D5, 82A3] MUST accept a UTF-8 encoded request, assume UTF-8 when no encoding is
    given, and answer in UTF-8."""
    body = json.dumps({"query": '{ __type(name: "Run🏃Swim🏊") { name } }'}, ensure_ascii=False)
    response = await http.post(
        "/graphql", content=body.encode("utf-8"), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200
    assert json.loads(response.content.decode("utf-8")) == {"data": {"__type": None}}


async def test_a_body_that_is_not_utf8_is_400(http: httpx.AsyncClient) -> None:
    """Requests that the server cannot interpret SHOULD result in status code 400."""
    body = '{"query": "{ __typename }", "note": "café"}'.encode("latin-1")
    response = await http.post("/graphql", content=body, headers={"Content-Type": JSON})
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


# --- the request: methods and content types ---------------------------------------------------


@pytest.mark.parametrize("accept", BOTH)
async def test_a_mutation_over_get_is_405_with_allow_post_and_writes_nothing(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str], accept: str
) -> None:
    """[9C48] GET requests MUST NOT be used for executing mutation operations: the server MUST
    respond with error status code 405 (Method Not Allowed) and halt execution."""
    before = await written(session)
    response = await get(http, {"query": CREATE}, accept=accept, headers=bearer)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert media_type(response) == accept
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "mutations are not allowed when using GET" in response.json()["errors"][0]["message"]
    assert await written(session) == before


async def test_a_mutation_named_by_operation_name_over_get_is_405(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str]
) -> None:
    """If the values of {query} and {operationName} indicate that a mutation operation is to be
    executed, the server MUST respond 405; the query beside it still runs over GET."""
    document = f"query Q {{ __typename }} mutation M {CREATE.removeprefix('mutation')}"
    before = await written(session)
    refused = await get(http, {"query": document, "operationName": "M"}, headers=bearer)
    assert refused.status_code == 405
    assert await written(session) == before
    served = await get(http, {"query": document, "operationName": "Q"}, headers=bearer)
    assert served.json() == {"data": {"__typename": "Query"}}


async def test_other_methods_are_405_with_allow(http: httpx.AsyncClient) -> None:
    """A server MUST accept POST requests, and MAY accept other HTTP methods, such as GET."""
    response = await http.head("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    response = await http.put("/graphql", content=b"{}")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("accept", BOTH)
async def test_get_reads_parameters_and_json_encoded_variables_and_extensions(
    http: httpx.AsyncClient, accept: str
) -> None:
    """[5A70, D6D5, 6A70] GET parameters are application/x-www-form-urlencoded; {variables} and
    {extensions} MUST be encoded as JSON strings; an empty {operationName} is no name."""
    params = {
        "query": TYPE_QUERY,
        "variables": json.dumps({"name": "Query"}),
        "extensions": json.dumps({"some": "value"}),
        "operationName": "",
    }
    response = await get(http, params, accept=accept)
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Query"}}}


@pytest.mark.parametrize("variables", ["{not json", "[1]", "7"])
async def test_get_variables_that_are_not_a_json_map_are_400(
    http: httpx.AsyncClient, variables: str
) -> None:
    """A request that does not constitute a well-formed GraphQL-over-HTTP request SHOULD result
    in status code 400."""
    response = await get(http, {"query": TYPE_QUERY, "variables": variables}, accept=JSON)
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_a_post_without_content_type_is_4xx(
    http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    """[9ABE] If the client does not supply a Content-Type header with a POST request, the server
    SHOULD reject the request using the appropriate 4xx status code. Without a CSRF header the
    CSRF guard answers 400 (app/csrf.py); with one, the view answers 415."""
    body = json.dumps({"query": "{ __typename }"}).encode()
    assert (await http.post("/graphql", content=body, headers=bearer)).status_code == 400
    csrf = bearer | {"X-Studio-CSRF": "1"}
    response = await http.post("/graphql", content=body, headers=csrf)
    assert response.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    [
        "application/graphql",
        "application/xml",
        "text/plain",
        "application/x-www-form-urlencoded",
        f"{JSON}; charset=utf-16",
        "application/json-seq",
        GRAPHQL_RESPONSE,
    ],
)
async def test_an_unsupported_content_type_is_415_and_writes_nothing(
    http: httpx.AsyncClient, session: AsyncSession, bearer: dict[str, str], content_type: str
) -> None:
    """A server MUST support POST requests encoded as application/json (UTF-8) and MAY support
    others; this one reads JSON and multipart uploads, and refuses the rest with 415."""
    before = await written(session)
    headers = bearer | {"Content-Type": content_type, "X-Studio-CSRF": "1"}
    body = json.dumps({"query": CREATE}).encode()
    response = await http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 415
    assert codes(response) == ["BAD_USER_INPUT"]
    assert await written(session) == before


async def test_a_multipart_upload_request_is_still_served(
    http: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    """Multipart (the GraphQL multipart request spec) stays a supported request type, answered
    in the accepted media type."""
    operations = json.dumps({"query": CREATE})
    files = {"operations": (None, operations), "map": (None, "{}")}
    headers = bearer | {"Apollo-Require-Preflight": "true", "Accept": GRAPHQL_RESPONSE}
    response = await http.post("/graphql", files=files, headers=headers)
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE
    assert response.json()["data"]["createVoiceProfile"]["voiceProfile"]["id"]


async def test_media_types_are_case_insensitive(http: httpx.AsyncClient) -> None:
    """Media types compare case-insensitively (RFC 9110 §8.3.1)."""
    response = await http.post(
        "/graphql",
        content=json.dumps({"query": "{ __typename }"}),
        headers={"Content-Type": "Application/JSON; charset=UTF-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("operations", "file_map"),
    [
        ("1", "{}"),
        ("null", "{}"),
        ('"query"', "{}"),
        ("{", "{}"),
        (json.dumps({"query": CREATE}), "5"),
        (json.dumps({"query": CREATE}), "[]"),
        (json.dumps({"query": CREATE}), '{"0": "variables.sample"}'),
        (json.dumps({"query": CREATE}), '{"0": [5]}'),
        (json.dumps({"query": CREATE}), '{"0": ["variables.input.sample"]}'),
        (json.dumps({"query": CREATE}), '{"sample": ["variables.input.sample"]}'),
    ],
    ids=[
        "operations-number",
        "operations-null",
        "operations-string",
        "operations-not-json",
        "map-number",
        "map-list",
        "map-path-not-a-list",
        "map-path-not-a-string",
        "map-path-to-no-variable",
        "map-file-missing",
    ],
)
async def test_a_malformed_multipart_request_is_400_and_writes_nothing(
    http: httpx.AsyncClient,
    session: AsyncSession,
    bearer: dict[str, str],
    operations: str,
    file_map: str,
) -> None:
    """A multipart request whose ``operations`` or ``map`` is not what the GraphQL multipart
    request spec describes is not a well-formed request: 400."""
    before = await written(session)
    files: dict[str, tuple[str | None, str | bytes]] = {
        "operations": (None, operations),
        "map": (None, file_map),
        "0": ("a.wav", b"RIFF"),
    }
    headers = bearer | {"Apollo-Require-Preflight": "true"}
    response = await http.post("/graphql", files=files, headers=headers)
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert await written(session) == before


async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient, settings: Settings) -> None:
    """Request bodies are bounded (SPEC §5 Limits): a larger one is refused with 413 before it
    is read."""
    padding = "x" * settings.max_body_bytes
    response = await post(http, {"query": "{ __typename }", "extensions": {"pad": padding}})
    assert response.status_code == 413
    assert codes(response) == ["BAD_USER_INPUT"]


# --- request parameters -----------------------------------------------------------------------


@pytest.mark.parametrize("accept", BOTH)
async def test_json_that_does_not_parse_is_400(http: httpx.AsyncClient, accept: str) -> None:
    """[B6DC, BCF8, B7N8] Requests that the server cannot interpret SHOULD result in 400, under
    either media type; the body is a GraphQL response without data."""
    response = await http.post(
        "/graphql", content=b'{ "not a JSON', headers={"Content-Type": JSON, "Accept": accept}
    )
    assert response.status_code == 400
    assert media_type(response) == accept
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_a_missing_body_is_400(http: httpx.AsyncClient) -> None:
    """[A5BF] MAY use 400 status code when the request body is missing on POST."""
    response = await http.post("/graphql", headers={"Content-Type": JSON})
    assert response.status_code == 400


@pytest.mark.parametrize("accept", BOTH)
@pytest.mark.parametrize(
    "body",
    [
        {"notquery": "{ __typename }"},
        {"qeury": "{ __typename }"},
        {"query": {"obj": "ect"}},
        {"query": 0},
        {"query": False},
        {"query": ["array"]},
        {"query": "{ __typename }", "operationName": {"obj": "ect"}},
        {"query": "{ __typename }", "operationName": 0},
        {"query": "{ __typename }", "operationName": False},
        {"query": "{ __typename }", "operationName": ["array"]},
        {"query": "{ __typename }", "variables": "string"},
        {"query": "{ __typename }", "variables": 0},
        {"query": "{ __typename }", "variables": False},
        {"query": "{ __typename }", "variables": ["array"]},
        {"query": "{ __typename }", "extensions": "string"},
        {"query": "{ __typename }", "extensions": 0},
        {"query": "{ __typename }", "extensions": False},
        {"query": "{ __typename }", "extensions": ["array"]},
        [{"query": "{ __typename }"}],
        None,
        1,
        "{ __typename }",
        True,
    ],
)
async def test_a_request_that_is_not_well_formed_is_400(
    http: httpx.AsyncClient, accept: str, body: object
) -> None:
    """[423L, LKJ0-3, 6C00-3, 4760-3, 58B0-3, 8764, 3E3A] A request that does not constitute a
    well-formed GraphQL-over-HTTP request SHOULD result in status code 400 (missing {query},
    parameters of the wrong type, a batch, which is not enabled, a body that is no object)."""
    response = await post(http, body, accept=accept)
    assert response.status_code == 400
    assert media_type(response) == accept
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("accept", BOTH)
@pytest.mark.parametrize("parameter", ["variables", "operationName", "extensions"])
async def test_null_optional_parameters_are_allowed(
    http: httpx.AsyncClient, accept: str, parameter: str
) -> None:
    """[94B0-2, 0220-2] Specifying null for optional request parameters is equivalent to not
    specifying them at all."""
    response = await post(http, {"query": "{ __typename }", parameter: None}, accept=accept)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", BOTH)
async def test_string_operation_name_and_map_parameters_are_allowed(
    http: httpx.AsyncClient, accept: str
) -> None:
    """[34A2, 13EE, 8161, B8B3, 2EA1, 28B9, 428F, 1B7A] {query} and {operationName} are strings,
    {variables} and {extensions} maps."""
    body = {
        "query": f"query Other {{ __typename }} {TYPE_QUERY}",
        "operationName": "Type",
        "variables": {"name": "Query"},
        "extensions": {"some": "value"},
    }
    response = await post(http, body, accept=accept)
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Query"}}}


# --- the response: status codes per media type ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": UNPARSABLE}, 400),
        ({"query": UNKNOWN_FIELD}, 422),
        ({"query": COERCION_FAILURE, "variables": {"name": None}}, 400),
        ({"query": "query A { __typename }", "operationName": "B"}, 400),
        ({"query": "subscription { viewerJobs { id } }"}, 400),
    ],
    ids=["parse", "validation", "variable-coercion", "unknown-operation", "subscription"],
)
async def test_request_errors_are_4xx_without_data_under_graphql_response_json(
    http: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    """[865D, 556A, D586, 51FE, 5E5B, 86EE] If the GraphQL response does not contain the {data}
    entry the server MUST reply with a 4xx or 5xx status code: 400 for a document that does not
    parse, an operation that cannot be determined or variables that do not coerce; 422 for a
    document that does not validate (the studio's choice; the draft says 400). Errors keep their
    ``extensions.code``."""
    response = await post(http, body, accept=GRAPHQL_RESPONSE)
    assert response.status_code == status
    assert media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert set(codes(response)) == {"BAD_USER_INPUT"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": UNPARSABLE},
        {"query": UNKNOWN_FIELD},
        {"query": COERCION_FAILURE, "variables": {"name": None}},
        {"query": "query A { __typename }", "operationName": "B"},
    ],
    ids=["parse", "validation", "variable-coercion", "unknown-operation"],
)
async def test_request_errors_are_200_under_application_json(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """[572B, FDE2, 7B9B] Under application/json the server SHOULD use 200 for every response to
    a well-formed GraphQL-over-HTTP request, independent of any GraphQL request error."""
    response = await post(http, body, accept=JSON)
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert "data" not in response.json()
    assert set(codes(response)) == {"BAD_USER_INPUT"}


def _nested(depth: int) -> str:
    levels = ["videos { edges { node { owner {"] * depth
    return "{ viewer { " + " ".join(levels) + " id " + "} } } }" * depth + " } }"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (_nested(4), 422),
        ("{ " + " ".join(f"a{n}: __typename" for n in range(40)) + " }", 422),
        ("{ " + "__typename " * 6000 + "}", 400),
    ],
    ids=["depth", "aliases", "tokens"],
)
async def test_the_document_limits_are_request_errors(
    http: httpx.AsyncClient, query: str, status: int
) -> None:
    """The server MAY apply additional validation rules (depth, aliases); the token limit stops
    the parser, so that document does not parse."""
    response = await post(http, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == status
    assert "data" not in response.json()


@pytest.mark.parametrize("accept", BOTH)
async def test_errors_during_execution_are_200_with_data(
    http: httpx.AsyncClient, accept: str
) -> None:
    """If the response contains the {data} entry and it is null, the server SHOULD reply with a
    2xx status code (RECOMMENDED 200): execution started, field errors are a partial response.
    Signed out, ``videos`` (non-null) fails and takes ``data`` with it."""
    response = await post(http, {"query": "{ videos { totalCount } }"}, accept=accept)
    assert response.status_code == 200
    assert media_type(response) == accept
    assert response.json()["data"] is None
    assert codes(response) == ["UNAUTHENTICATED"]
    assert response.json()["errors"][0]["path"] == ["videos"]


@pytest.mark.parametrize(
    ("code", "status"), [("RATE_LIMITED", 429), ("INTERNAL", 500), ("BAD_USER_INPUT", 400)]
)
def test_a_request_error_refused_after_validation_takes_its_codes_status(
    code: str, status: int
) -> None:
    """An operation refused after validation but before execution (the rate limit, or an
    unexpected failure) answers the status its ``extensions.code`` names, under
    application/graphql-response+json."""
    error = GraphQLError("refused", extensions={"code": code})
    result = PreExecutionError(data=None, errors=[error])
    assert http_protocol.is_request_error(result)
    assert http_protocol.request_error_status(result, http_protocol.VALIDATED) == status
