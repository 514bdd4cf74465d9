"""Concurrent updates of one video never lose a write (SPEC §5: nothing is lost).

Real concurrency needs real transactions, so this test has its own committed database and an
app with a connection pool, and fires the requests at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.auth import issue_access_token
from app.main import create_app
from app.settings import Settings, load_settings
from app.state import AppState
from db.models import AuditEvent, User, Video, VideoInputType
from db.url import DatabaseURL
from schema.relay import to_global_id

UPDATE = """mutation($input: UpdateVideoInput!) { updateVideo(input: $input) { video { id } } }"""


@pytest.fixture
async def committed_app(
    migrated_database: DatabaseURL,
) -> AsyncIterator[tuple[Starlette, Settings]]:
    url = migrated_database.render(hide_password=False)
    settings = load_settings(database_url=url, db_pool_size=8)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, settings


async def test_concurrent_updates_of_one_video_all_land(
    committed_app: tuple[Starlette, Settings],
) -> None:
    app, settings = committed_app
    state: AppState = app.state.studio
    async with state.sessionmaker.begin() as session:
        user = User(email="concurrent@example.com")
        session.add(user)
        await session.flush()
        video = Video(
            user_id=user.id,
            title="Start",
            description="Start.",
            input_type=VideoInputType.DESCRIPTION,
        )
        session.add(video)
    gid = to_global_id("Video", video.id)
    token = issue_access_token(settings, user.id).token

    changes: list[dict[str, Any]] = [
        {"title": "Concurrent title"},
        {"description": "Concurrent description."},
        {"audioSettings": {"speed": 1.5}},
        {"audioSettings": {"pitch": 0.75}},
        {"audioSettings": {"volume": 0.5}},
        {"audioSettings": {"language": "de"}},
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/graphql",
                    json={"query": UPDATE, "variables": {"input": {"id": gid} | change}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                for change in changes
            )
        )
    assert all(response.json().get("errors") is None for response in responses), [
        response.json() for response in responses
    ]

    async with state.sessionmaker() as session:
        stored = await session.get(Video, video.id)
        assert stored is not None
        assert stored.title == "Concurrent title"
        assert stored.description == "Concurrent description."
        # Each request merged its one key into the JSON under the row lock: none overwrote another.
        assert stored.audio_settings == {
            "speed": 1.5,
            "pitch": 0.75,
            "volume": 0.5,
            "language": "de",
        }
        events = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "video.update")
        )
        assert events == len(changes)
