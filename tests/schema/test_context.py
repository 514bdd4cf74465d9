"""A `Context` is made one way (its keyword-only constructor) and derives its loaders itself."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Viewer
from app.settings import Settings
from db import models
from schema.context import Context
from schema.loaders import SessionGate
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]


async def test_a_context_reads_as_the_viewer_it_is_made_for(
    settings: Settings, session: AsyncSession, owner: models.User
) -> None:
    viewer = Viewer(user_id=owner.id, expires_at=datetime.now(UTC) + timedelta(hours=1))
    context = Context(settings=settings, request_id="r", gate=SessionGate(session), viewer=viewer)
    assert context.loaders.viewer_id == owner.id
    user = await context.viewer_user()
    assert user is not None
    assert user.id == owner.id


async def test_signing_in_gives_the_context_loaders_of_the_new_viewer(
    settings: Settings, session: AsyncSession
) -> None:
    context = Context(settings=settings, request_id="r", gate=SessionGate(session), viewer=None)
    assert await context.viewer_user() is None
    user = await make_user(session)
    context.sign_in_as(Viewer(user_id=user.id, expires_at=datetime.now(UTC) + timedelta(hours=1)))
    assert context.loaders.viewer_id == user.id
    signed_in = await context.viewer_user()
    assert signed_in is not None
    assert signed_in.id == user.id


def test_only_the_context_makes_loaders() -> None:
    """The loaders of an operation follow from its gate and viewer (`Context._new_loaders`): a
    transport that made them itself could give an operation loaders for another viewer."""
    made_elsewhere = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in ("app", "schema")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "schema" / "context.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Loaders"
    ]
    assert made_elsewhere == []
