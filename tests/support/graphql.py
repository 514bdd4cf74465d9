"""Talk to the app under test the way a client does: HTTP, JSON, bearer tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import issue_access_token
from app.settings import Settings


@dataclass
class GraphQLResponse:
    status_code: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def codes(self) -> list[str | None]:
        return [error.get("extensions", {}).get("code") for error in self.errors]

    def ok(self) -> Any:
        """The data, after checking there were no errors."""
        assert self.errors == [], self.errors
        return self.data


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    settings: Settings
    token: str | None = None

    def as_user(self, user_id: uuid.UUID) -> GraphQLClient:
        return GraphQLClient(
            self.http, self.settings, issue_access_token(self.settings, user_id).token
        )

    def anonymous(self) -> GraphQLClient:
        return GraphQLClient(self.http, self.settings, None)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResponse:
        all_headers = {"Content-Type": "application/json"} | (headers or {})
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )
        return GraphQLResponse(response.status_code, response.json())


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(connection: AsyncConnection) -> Iterator[StatementCounter]:
    """Every SQL statement sent on ``connection`` inside the block (savepoints excluded)."""
    counter = StatementCounter()

    def before_cursor_execute(*args: Any) -> None:
        statement = str(args[2])
        if (
            not statement.lstrip()
            .upper()
            .startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))
        ):
            counter.statements.append(statement)

    sync_connection = connection.sync_connection
    assert sync_connection is not None
    event.listen(sync_connection, "before_cursor_execute", before_cursor_execute)
    try:
        yield counter
    finally:
        event.remove(sync_connection, "before_cursor_execute", before_cursor_execute)
