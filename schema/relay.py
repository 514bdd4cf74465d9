"""Relay plumbing: opaque global ids, signed keyset cursors, and connection types (every
connection field is made with them by `schema.paging`).

Global ids are ``base64url("<Type>:<uuid>")``: opaque to clients, stable, and they say which type
to load. Cursors carry the last row's (order value, id) plus the ordering they belong to, signed
with the server's key: a client cannot forge one to skip the owner filter's index range or feed
garbage into SQL, and a cursor used with another ``orderBy`` is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

import strawberry

from app.errors import BadUserInput
from db.queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest
from schema.plain_fields import plain_field

NodeT = TypeVar("NodeT")

_CURSOR_MAC_BYTES = 12


@strawberry.interface(description="An object with a global id (Relay object identification).")
class Node:
    id: strawberry.ID  # each implementation declares it with `schema.mapping.global_id`


# Cursors are signed (an HMAC each), so they are made only when a client asks for them: most
# pages are read for their nodes alone.


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str = plain_field(lambda edge, _info: edge.encode_cursor())
    node: NodeT
    encode_cursor: strawberry.Private[Callable[[], str]]


@strawberry.type(description="Where a page sits in its connection (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None = plain_field(lambda page, _info: _cursor_of(page.start))
    end_cursor: str | None = plain_field(lambda page, _info: _cursor_of(page.end))
    start: strawberry.Private[Edge[Any] | None]
    end: strawberry.Private[Edge[Any] | None]


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description="All items of the connection (with its filter), not only this page."
    )
    async def total_count(self) -> int:
        return await self.count()


# --- global ids ---------------------------------------------------------------------------


def to_global_id(type_name: str, row_id: uuid.UUID) -> strawberry.ID:
    raw = f"{type_name}:{row_id}".encode()
    return strawberry.ID(_b64(raw))


def from_global_id(
    global_id: str, *, expected: str | None = None, field: str = "id"
) -> tuple[str, uuid.UUID]:
    """(type name, uuid) of a global id; `BadUserInput` (naming ``field``) for anything
    malformed or mistyped."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
        type_name, _, value = raw.partition(":")
        row_id = uuid.UUID(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInput(f"{global_id!r} is not a valid id.", field=field) from None
    if expected is not None and type_name != expected:
        raise BadUserInput(f"{global_id!r} is not the id of a {expected}.", field=field)
    return type_name, row_id


# --- cursors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CursorCodec:
    """Signs and checks cursors for one ordering (e.g. ``videos:TITLE:ASC``)."""

    secret: bytes
    ordering: str
    value_type: type[datetime] | type[str]

    def encode(self, value: Any, row_id: uuid.UUID) -> str:
        text_value = value.isoformat() if isinstance(value, datetime) else str(value)
        payload = json.dumps([self.ordering, text_value, str(row_id)], separators=(",", ":"))
        body = payload.encode()
        return _b64(self._mac(body) + body)

    def decode(self, cursor: str, *, argument: str) -> tuple[Any, uuid.UUID]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            mac, body = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
            if not hmac.compare_digest(mac, self._mac(body)):
                raise ValueError("signature")
            ordering, text_value, row_id = json.loads(body)
        except (binascii.Error, ValueError, TypeError):
            raise BadUserInput(f"`{argument}` is not a valid cursor.", field=argument) from None
        if ordering != self.ordering:
            raise BadUserInput(
                f"`{argument}` is a cursor of another ordering or list; start again without it.",
                field=argument,
            )
        value = datetime.fromisoformat(text_value) if self.value_type is datetime else text_value
        return value, uuid.UUID(row_id)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]


@lru_cache(maxsize=8)
def cursor_secret(secret_key: str) -> bytes:
    """A key for cursors only, derived from the server secret (never the secret itself); made
    once per secret, not per operation."""
    return hmac.new(secret_key.encode(), b"studio-api cursor v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class ConnectionArgs:
    """``first``/``after``/``last``/``before`` as the client sent them."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        # Arguments a client left out arrive as UNSET (so the SDL shows no default); an explicit
        # null means the same here.
        for name in ("first", "after", "last", "before"):
            if getattr(self, name) is strawberry.UNSET:
                object.__setattr__(self, name, None)

    def page_request(self, codec: CursorCodec) -> PageRequest:
        """Validate the arguments (SPEC §5: default 20, at most 100) into a `PageRequest`."""
        if self.first is not None and self.last is not None:
            raise BadUserInput("Pass `first` or `last`, not both.", field="last")
        if self.after is not None and self.before is not None:
            raise BadUserInput("Pass `after` or `before`, not both.", field="before")
        if self.last is not None and self.after is not None:
            raise BadUserInput("Use `after` with `first`, and `before` with `last`.", field="after")
        if self.first is not None and self.before is not None:
            raise BadUserInput(
                "Use `after` with `first`, and `before` with `last`.", field="before"
            )
        backward = self.last is not None or self.before is not None
        size = self.last if backward else self.first
        argument = "last" if backward else "first"
        if size is None:
            size = DEFAULT_PAGE_SIZE
        if not 0 <= size <= MAX_PAGE_SIZE:
            raise BadUserInput(
                f"`{argument}` must be between 0 and {MAX_PAGE_SIZE}.", field=argument
            )
        cursor_text = self.before if backward else self.after
        cursor = (
            None
            if cursor_text is None
            else codec.decode(cursor_text, argument="before" if backward else "after")
        )
        return PageRequest(limit=size, backward=backward, cursor=cursor)


def _cursor_of(edge: Edge[Any] | None) -> str | None:
    return None if edge is None else edge.encode_cursor()


def _b64(data: bytes) -> str:
    # `base64.urlsafe_b64encode`, without its two calls around binascii (ids are made per row).
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).decode().rstrip("=")


_URLSAFE = bytes.maketrans(b"+/", b"-_")
