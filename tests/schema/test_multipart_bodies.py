"""Multipart bodies that cannot be read at all are refused like every other malformed request:
400 with a GraphQL error coded ``BAD_USER_INPUT`` (Starlette's form parser answers them in plain
text). Fields of the wrong shape (``operations``, ``map``) are in
``tests/app/test_graphql_over_http.py``."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User, VoiceProfile
from tests.support.graphql import GraphQLClient

BOUNDARY = "studio-boundary"
CREATE = (
    b'{"query": "mutation { createVoiceProfile(input: {name: \\"Sneaky\\"}) '
    b'{ voiceProfile { id } } }"}'
)


def part(disposition: bytes, value: bytes) -> bytes:
    return b"--" + BOUNDARY.encode() + b"\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"


def field(name: str, value: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"'.encode(), value)


OPERATION = field("operations", CREATE) + field("map", b"{}")
END = f"--{BOUNDARY}--\r\n".encode()
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", OPERATION + END, "Missing boundary"),
        ("multipart/form-data; boundary=", OPERATION + END, "Invalid multipart data"),
        ("multipart/form-data; boundary=other", OPERATION + END, "Invalid multipart data"),
        (MULTIPART, b"not multipart at all\x00\xff", "Invalid multipart data"),
        (
            MULTIPART,
            f"--{BOUNDARY}\r\nContent-Disposition form-data\r\n\r\nx\r\n".encode() + END,
            "Invalid multipart data",
        ),
        (MULTIPART, part(b"Content-Type: text/plain", b"x") + OPERATION + END, '"name"'),
        (
            MULTIPART,
            part(b'Content-Disposition: form-data; filename="a.wav"', b"RIFF") + OPERATION + END,
            '"name"',
        ),
        (
            MULTIPART,
            OPERATION + b"".join(field(f"f{n}", b"x") for n in range(1001)) + END,
            "Too many fields",
        ),
        (
            MULTIPART,
            OPERATION
            + b"".join(
                part(f'Content-Disposition: form-data; name="{n}"; filename="a"'.encode(), b"x")
                for n in range(1001)
            )
            + END,
            "Too many files",
        ),
        (MULTIPART, field("operations", b'{"query": "' + b"a" * 1_100_000 + b'"}') + END, "size"),
    ],
    ids=[
        "no-boundary",
        "empty-boundary",
        "other-boundary",
        "no-parts",
        "broken-part-header",
        "no-content-disposition",
        "content-disposition-without-name",
        "too-many-fields",
        "too-many-files",
        "part-too-large",
    ],
)
async def test_a_multipart_body_that_cannot_be_read_is_a_graphql_error(
    graphql: GraphQLClient,
    http: httpx.AsyncClient,
    owner: User,
    session: AsyncSession,
    content_type: str,
    body: bytes,
    reason: str,
) -> None:
    token = graphql.as_user(owner.id).token
    headers = {
        "Content-Type": content_type,
        "Apollo-Require-Preflight": "true",
        "Authorization": f"Bearer {token}",
    }
    response = await http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert error["message"].startswith("Unable to parse the multipart body")
    assert reason in error["message"]
    assert await session.scalar(select(func.count()).select_from(VoiceProfile)) == 0


async def test_a_readable_multipart_body_still_runs(
    graphql: GraphQLClient, http: httpx.AsyncClient, owner: User
) -> None:
    headers = {
        "Content-Type": MULTIPART,
        "Apollo-Require-Preflight": "true",
        "Authorization": f"Bearer {graphql.as_user(owner.id).token}",
    }
    response = await http.post("/graphql", content=OPERATION + END, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["createVoiceProfile"]["voiceProfile"]["id"]
