"""``updated_at`` is right after ORM flushes and bulk updates alike; every table keeps it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Base, Video
from tests.factories import make_user, make_video


async def test_orm_update_sets_updated_at_and_reads_it_back(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    created, before = video.created_at, video.updated_at
    video.title = "A better title"
    await session.flush()
    # FetchedValue: the new value came back with the UPDATE, no refresh needed.
    assert video.updated_at > before
    assert video.created_at == created


async def test_bulk_update_sets_updated_at(session: AsyncSession) -> None:
    user = await make_user(session)
    videos = [await make_video(session, user, title=f"Video {n}") for n in range(3)]
    before = {v.id: v.updated_at for v in videos}
    await session.execute(update(Video).where(Video.user_id == user.id).values(progress=10))
    rows = (
        await session.execute(select(Video.id, Video.updated_at).where(Video.user_id == user.id))
    ).all()
    assert len(rows) == 3
    assert all(updated_at > before[video_id] for video_id, updated_at in rows)


async def test_client_supplied_updated_at_is_overruled(session: AsyncSession) -> None:
    video = await make_video(session, await make_user(session))
    await session.execute(
        update(Video)
        .where(Video.id == video.id)
        .values(updated_at=datetime(2000, 1, 1, tzinfo=UTC))
    )
    stored = await session.scalar(select(Video.updated_at).where(Video.id == video.id))
    assert stored is not None
    assert stored.year > 2000


async def test_every_table_with_updated_at_has_the_trigger(session: AsyncSession) -> None:
    with_column = {t.name for t in Base.metadata.sorted_tables if "updated_at" in t.c}
    triggered = set(
        (
            await session.scalars(
                text(
                    "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE t.tgname = c.relname || '_set_updated_at' AND NOT t.tgisinternal"
                )
            )
        ).all()
    )
    assert with_column == {"users", "voice_profiles", "videos", "generation_jobs", "audit_events"}
    assert with_column <= triggered
