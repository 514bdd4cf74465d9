"""`studio purge --older-than`: deleted videos and profiles, and media nothing uses, go for good;
everything still shown, restorable or being written stays."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import media
from app.pipeline.preview import PREVIEWS
from app.purge import parse_age, purge
from app.settings import Settings
from db import models
from db.models import JobStatus
from db.url import DatabaseURL
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.processes import clean_env, run_studio

DAY = 24 * 3600


def store(settings: Settings, path: str, age_days: float) -> Path:
    """Write a file at ``path`` whose folder and file were last changed ``age_days`` ago."""
    file = media.write_file(settings, path, b"x" * 100)
    moment = time.time() - age_days * DAY
    for changed in (file, file.parent, file.parent.parent):
        os.utime(changed, (moment, moment))
    return file


async def deleted_days_ago(session: AsyncSession, row: models.Base, days: int) -> None:
    await session.execute(
        text(f"UPDATE {row.__tablename__} SET deleted_at = now() - make_interval(days => :days)"  # noqa: S608
             " WHERE id = :id"),
        {"days": days, "id": row.id},  # type: ignore[attr-defined]
    )  # fmt: skip
    await session.commit()


def exists(settings: Settings, path: str) -> bool:
    return media.resolve(settings, path).exists()


async def test_deleted_videos_and_profiles_go_after_the_age_and_not_before(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], media_settings: Settings
) -> None:
    user = await make_user(session)
    old, recent = await make_video(session, user), await make_video(session, user)
    await make_job(session, old, status=JobStatus.SUCCEEDED)
    profile = await make_voice_profile(session, user)
    old_files = [f"videos/{old.id}/run.1/video.mp4", f"videos/{old.id}/run.1/poster.png"]
    recent_file = f"videos/{recent.id}/run.1/video.mp4"
    profile_files = [f"{media.VOICE_SAMPLES}/{profile.id}/a.wav", f"{PREVIEWS}/{profile.id}/b.wav"]
    for path in [*old_files, recent_file, *profile_files]:
        store(media_settings, path, age_days=40)
    old.media_path, recent.media_path = old_files[0], recent_file
    old.duration_ms = recent.duration_ms = 1000
    await session.commit()
    await deleted_days_ago(session, old, 40)
    await deleted_days_ago(session, recent, 1)
    await deleted_days_ago(session, profile, 40)

    report = await purge(media_settings, sessionmaker, timedelta(days=30))

    assert (report.videos, report.voice_profiles) == ([old.id], [profile.id])
    assert sorted(report.folders) == sorted(
        [
            f"videos/{old.id}/run.1",
            f"{media.VOICE_SAMPLES}/{profile.id}",
            f"{PREVIEWS}/{profile.id}",
        ]
    )
    assert report.bytes == 400
    assert not any(exists(media_settings, path) for path in [*old_files, *profile_files])
    assert not exists(media_settings, f"videos/{old.id}")  # the empty video folder too
    assert exists(media_settings, recent_file)  # deleted a day ago: still restorable
    remaining = await session.scalars(
        select(models.Video.id).where(models.Video.user_id == user.id)
    )
    assert set(remaining) == {recent.id}
    jobs = await session.scalar(select(func.count()).select_from(models.GenerationJob))
    assert jobs == 0


async def test_state_histories_keep_what_is_younger_than_the_age(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], media_settings: Settings
) -> None:
    """A run's statuses are kept for resuming subscribers until they are as old as the age."""
    user = await make_user(session)
    video = await make_video(session, user)
    job = await make_job(session, video)
    await session.commit()
    job.status = JobStatus.RUNNING
    await session.commit()
    for history in (models.JobStateChange, models.VideoStateChange):
        await session.execute(
            text(f"UPDATE {history.__tablename__} SET changed_at = now() - interval '40 days'"  # noqa: S608
                 " WHERE version = 1")
        )  # fmt: skip
    await session.commit()

    dry = await purge(media_settings, sessionmaker, timedelta(days=30), dry_run=True)
    assert dry.state_changes == 2  # the job's QUEUED and the video's DRAFT
    report = await purge(media_settings, sessionmaker, timedelta(days=30))
    assert report.state_changes == 2
    kept = await session.scalars(select(models.JobStateChange.version))
    assert list(kept) == [2]  # RUNNING, recorded just now


async def test_runs_a_newer_run_replaced_go_and_the_shown_and_active_runs_stay(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], media_settings: Settings
) -> None:
    user = await make_user(session)
    video = await make_video(session, user)
    running = await make_job(session, video, status=JobStatus.RUNNING, attempt=2)
    shown = f"videos/{video.id}/shown.1"
    replaced = f"videos/{video.id}/replaced.1"
    active = f"videos/{video.id}/{running.id}.2"
    fresh = f"videos/{video.id}/fresh.1"  # an unknown run, but written just now
    for folder in (shown, replaced, active):
        store(media_settings, f"{folder}/captions/en.vtt", age_days=40)
    store(media_settings, f"{shown}/video.mp4", age_days=40)
    store(media_settings, f"{fresh}/video.mp4", age_days=0)
    video.media_path, video.duration_ms = f"{shown}/video.mp4", 1000
    video.caption_tracks = [{"language": "en", "format": "vtt", "path": f"{shown}/captions/en.vtt"}]
    await session.commit()

    dry = await purge(media_settings, sessionmaker, timedelta(days=30), dry_run=True)
    assert dry.folders == [replaced]
    assert exists(media_settings, replaced)  # a dry run removes nothing

    report = await purge(media_settings, sessionmaker, timedelta(days=30))
    assert report.folders == [replaced]
    assert not exists(media_settings, replaced)
    assert all(exists(media_settings, folder) for folder in (shown, active, fresh))


async def test_files_of_rows_that_no_longer_exist_go_once_old(
    sessionmaker: async_sessionmaker[AsyncSession], media_settings: Settings
) -> None:
    orphan_old, orphan_new = uuid.uuid4(), uuid.uuid4()
    store(media_settings, f"videos/{orphan_old}/run.1/video.mp4", age_days=40)
    store(media_settings, f"videos/{orphan_new}/run.1/video.mp4", age_days=0)
    store(media_settings, f"{media.VOICE_SAMPLES}/{orphan_old}/a.wav", age_days=40)
    store(media_settings, "videos/not-an-id/run.1/video.mp4", age_days=40)

    report = await purge(media_settings, sessionmaker, timedelta(days=30))

    assert sorted(report.folders) == sorted(
        [f"videos/{orphan_old}/run.1", f"{media.VOICE_SAMPLES}/{orphan_old}"]
    )
    assert exists(media_settings, f"videos/{orphan_new}/run.1/video.mp4")
    assert exists(media_settings, "videos/not-an-id/run.1/video.mp4")  # not ours to judge


@pytest.mark.parametrize(
    ("text_", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
     ("0s", timedelta(0)), (" 90m ", timedelta(minutes=90))],
)  # fmt: skip
def test_ages(text_: str, expected: timedelta) -> None:
    assert parse_age(text_) == expected


@pytest.mark.parametrize("text_", ["", "30", "d", "-1d", "1y", "1.5d", "30 days"])
def test_bad_ages_are_refused(text_: str) -> None:
    with pytest.raises(ValueError, match="is not an age"):
        parse_age(text_)


def test_the_command_reports_and_refuses_a_bad_age(
    migrated_database: DatabaseURL, tmp_path: Path
) -> None:
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_MEDIA_DIR=str(tmp_path / "media"),
    )
    orphan = tmp_path / "media" / "videos" / str(uuid.uuid4()) / "run.1"
    orphan.mkdir(parents=True)
    (orphan / "video.mp4").write_bytes(b"x" * 2_000_000)

    dry = run_studio("purge", "--older-than", "0s", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 0 videos, 0 voice profiles and 1 media folders (2.0 MB)" in dry.stdout
    assert orphan.exists()

    done = run_studio("purge", "--older-than", "0s", env=env)
    assert done.returncode == 0, done.stderr
    assert "removed 0 videos, 0 voice profiles and 1 media folders" in done.stdout
    assert "removed 0 old entries of the job and video state histories" in done.stdout
    assert not orphan.exists()

    bad = run_studio("purge", "--older-than", "soon", env=env)
    assert bad.returncode == 2
    assert "--older-than: 'soon' is not an age" in bad.stdout + bad.stderr
