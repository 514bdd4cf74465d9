"""Plain async factories: each test states the rows it relies on."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GenerationJob, User, Video, VideoInputType, VoiceProfile


async def make_user(session: AsyncSession, **overrides: Any) -> User:
    values: dict[str, Any] = {"email": f"user-{uuid.uuid4().hex[:10]}@example.com"} | overrides
    user = User(**values)
    session.add(user)
    await session.flush()
    return user


async def make_voice_profile(session: AsyncSession, owner: User, **overrides: Any) -> VoiceProfile:
    profile = VoiceProfile(
        **({"user_id": owner.id, "name": "Narrator", "language": "en"} | overrides)
    )
    session.add(profile)
    await session.flush()
    return profile


async def make_video(session: AsyncSession, owner: User, **overrides: Any) -> Video:
    values: dict[str, Any] = {
        "user_id": owner.id,
        "title": "How solar panels work",
        "description": "Sunlight knocks electrons loose.",
        "input_type": VideoInputType.DESCRIPTION,
    } | overrides
    video = Video(**values)
    session.add(video)
    await session.flush()
    return video


async def make_job(session: AsyncSession, video: Video, **overrides: Any) -> GenerationJob:
    job = GenerationJob(**({"video_id": video.id} | overrides))
    session.add(job)
    await session.flush()
    return job
