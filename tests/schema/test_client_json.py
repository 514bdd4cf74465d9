"""JSON from clients is parsed with a bound on its nesting (`schema.client_json`), wherever it
arrives over HTTP: a POST body, a GET's ``variables``/``extensions``, a multipart request's
``operations`` and ``map``. (Websocket messages: `tests/schema/test_websocket_rules.py`.)"""

from __future__ import annotations

import json

import httpx
import pytest

from app.settings import Settings
from schema.client_json import ClientJSONError, loads, nesting_depth

JSON_HEADERS = {"Content-Type": "application/json"}
#: 2.2 KB that crashed the JSON parser (RecursionError) before the bound.
DEEP = "[" * 1100


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_refusal(response: httpx.Response, settings: Settings) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert "x-request-id" in response.headers
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "limit": "json_depth"}
    limit = settings.max_json_depth
    assert error["message"] == f"The JSON is nested more than {limit} levels deep."


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not count
        (r'["\"[[[", "\\", [[]]]', 3),  # nor after escaped quotes; an escaped backslash ends
        ('["unterminated [[[[', 1),
        ("[[[", 3),  # unbalanced: what is open counts
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_loads_refuses_json_deeper_than_the_bound_and_parses_the_rest() -> None:
    assert loads(nested(64), max_depth=64) == json.loads(nested(64))
    assert loads(json.dumps({"a": "[" * 500}), max_depth=2) == {"a": "[" * 500}
    with pytest.raises(ClientJSONError) as refused:
        loads(nested(65), max_depth=64)
    assert refused.value.limit == "json_depth"
    with pytest.raises(json.JSONDecodeError):
        loads(DEEP[:10], max_depth=64)  # not too deep, just not JSON


def test_loads_refuses_a_number_python_will_not_convert() -> None:
    with pytest.raises(ClientJSONError):
        loads("1" * 5000, max_depth=64)


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        f'{{"query": "{{ __typename }}", "variables": {{"a": {nested(100)}}}}}',
        f'{{"query": "{{ __typename }}", "extensions": {{"a": {nested(65)}}}}}',
    ],
    ids=["body", "variables", "extensions"],
)
async def test_a_post_body_nested_too_deep_is_400(
    http: httpx.AsyncClient, settings: Settings, body: str
) -> None:
    """Signed out, over plain JSON: refused with a coded error, not a 500."""
    response = await http.post("/graphql", content=body, headers=JSON_HEADERS)
    deep_refusal(response, settings)


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
async def test_get_parameters_nested_too_deep_are_400(
    http: httpx.AsyncClient, settings: Settings, parameter: str
) -> None:
    params = {"query": "{ __typename }", parameter: f'{{"a": {nested(1100)}}}'}
    deep_refusal(await http.get("/graphql", params=params), settings)


@pytest.mark.parametrize("field", ["operations", "map"])
async def test_multipart_fields_nested_too_deep_are_400(
    http: httpx.AsyncClient, settings: Settings, field: str
) -> None:
    fields = {"operations": '{"query": "{ __typename }"}', "map": "{}"} | {field: DEEP}
    files = {name: (None, value) for name, value in fields.items()}
    response = await http.post(
        "/graphql", files=files, headers={"Apollo-Require-Preflight": "true"}
    )
    deep_refusal(response, settings)


async def test_a_number_of_too_many_digits_is_400(http: httpx.AsyncClient) -> None:
    body = '{"query": "{ __typename }", "variables": {"a": ' + "1" * 5000 + "}}"
    response = await http.post("/graphql", content=body, headers=JSON_HEADERS)
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_json_at_the_bound_is_still_served(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    depth = settings.max_json_depth - 2  # the body object and its `extensions` are two levels
    body = {"query": "{ __typename }", "extensions": {"a": json.loads(nested(depth))}}
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
