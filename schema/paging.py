"""Every connection field, made one way: its arguments (`paged`) and its page (`Pages`).

A connection field's resolver takes ``(self, info, page: ConnectionArgs, …)``. `paged` declares
in ``page``'s place the four arguments of SPEC §4 (``first: Int, after: String, last: Int,
before: String``, in that order, no defaults), for Strawberry and for graphql-core, which may
call the resolver itself (`schema.plain_fields`), and hands the resolver what a client sent as
one `ConnectionArgs`.

`Pages` says what one connection reads: the loaders of its pages and of its ``totalCount``, the
ordering its cursors are signed for, and how a row becomes a node. `Pages.connection` checks
the arguments (`ConnectionArgs.page_request`: SPEC §5's limits, this ordering's signed
cursors), loads the page, and builds the edges, their cursors, ``pageInfo`` and
``totalCount``.
"""

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar

import strawberry
from aiodataloader import DataLoader

from db.queries.pagination import Ordering, PageRequest, PageSlice
from schema.context import Info
from schema.loaders import Loaders
from schema.relay import Connection, ConnectionArgs, CursorCodec, Edge, PageInfo

RowT = TypeVar("RowT")
NodeT = TypeVar("NodeT")
R = TypeVar("R")


def paged(resolve: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """``resolve(self, info, page, …)`` as the resolver of a connection field: it takes the
    connection arguments where ``resolve`` takes ``page``, then ``resolve``'s own (a filter, an
    order), and calls ``resolve`` with them as one `ConnectionArgs`.

    Strawberry reads a resolver's arguments from its signature (and passes ``self`` first,
    ``info`` by name): the one given here is ``resolve``'s with ``page`` replaced by the four."""
    signature = inspect.signature(resolve)
    root, info, page, *own = signature.parameters.values()
    if (root.name, info.name, page.name) != ("self", "info", "page"):
        raise TypeError(f"{resolve.__qualname__} must take (self, info, page, …)")

    # The four arguments, declared here alone. Absent, each is UNSET (the SDL then shows no
    # default, as SPEC writes it), which `ConnectionArgs` reads as null.
    async def resolver(
        self: Any,
        info: Info,
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        last: int | None = strawberry.UNSET,
        before: str | None = strawberry.UNSET,
        **arguments: Any,
    ) -> R:
        return await resolve(self, info, ConnectionArgs(first, after, last, before), **arguments)

    connection_arguments = list(inspect.signature(resolver).parameters.values())[2:6]
    parameters = [root, info, *connection_arguments, *own]
    functools.update_wrapper(resolver, resolve)  # its name, module (for `own`'s annotations)…
    resolver.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    resolver.__annotations__ = {
        **{parameter.name: parameter.annotation for parameter in parameters},
        "return": signature.return_annotation,
    }
    return resolver


@dataclass(frozen=True)
class Pages(Generic[RowT, NodeT]):
    """What one connection reads (`connection` reads a page of it)."""

    #: The list its cursors are signed for: a cursor's ordering (`CursorCodec.ordering`) is
    #: ``<list>:<COLUMN>:<DIRECTION>``, e.g. ``jobs:QUEUED_AT:DESC``.
    cursors: str
    #: The order the loader reads the rows in (the `db.queries` function's own): a cursor holds
    #: the row's value of its column, a timestamp or a text.
    ordering: Ordering
    #: The loader of one page of each parent, and the loader of each parent's ``totalCount``.
    page_loader: Callable[[Loaders, PageRequest], DataLoader[uuid.UUID, PageSlice[RowT]]]
    count_loader: Callable[[Loaders], DataLoader[uuid.UUID, int]]
    node: Callable[[RowT], NodeT]
    #: The by-id loader a page's rows are primed into: looking one up later (a job's ``video``
    #: among a page of videos) then costs no statement.
    by_id: Callable[[Loaders], DataLoader[uuid.UUID, RowT | None]] | None = None

    async def connection(
        self, info: Info, parent_id: uuid.UUID, page: ConnectionArgs
    ) -> Connection[NodeT]:
        """``parent_id``'s page as ``page`` asks for it; `BadUserInput` for arguments out of
        SPEC §5's limits or a cursor that is not this list's in this order."""
        loaders = info.context.loaders
        codec = self.codec(info.context.cursor_key)
        found = await self.page_loader(loaders, page.page_request(codec)).load(parent_id)
        if self.by_id is not None:
            by_id = self.by_id(loaders)
            for row in found.rows:
                by_id.prime(_row_id(row), row)
        count_loader = self.count_loader(loaders)
        edges = self._edges(found.rows, codec)
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=found.has_next_page,
                has_previous_page=found.has_previous_page,
                start=edges[0] if edges else None,
                end=edges[-1] if edges else None,
            ),
            count=functools.partial(count_loader.load, parent_id),
        )

    def codec(self, secret: bytes) -> CursorCodec:
        column, descending = self.ordering.column, self.ordering.descending
        return CursorCodec(
            secret=secret,
            ordering=f"{self.cursors}:{column.key.upper()}:{'DESC' if descending else 'ASC'}",
            value_type=str if column.type.python_type is str else datetime,
        )

    def _edges(self, rows: list[RowT], codec: CursorCodec) -> list[Edge[NodeT]]:
        # Cursors are signed when asked for (`Edge.cursor`): each edge keeps what it signs.
        order_value = attrgetter(self.ordering.column.key)
        return [
            Edge(
                node=self.node(row),
                encode_cursor=functools.partial(codec.encode, order_value(row), _row_id(row)),
            )
            for row in rows
        ]


_row_id: Callable[[Any], uuid.UUID] = attrgetter("id")
