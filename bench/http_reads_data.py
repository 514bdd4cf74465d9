"""The data and the three queries of `bench/bench_http_reads.py`.

`seed` fills a migrated database through the ORM models (bulk inserts): 10 users, each with 100
live videos (plus 5 soft-deleted ones no answer may show), 5 generation jobs per video and 3
voice profiles (one soft-deleted, so some videos show ``voiceProfile: null``). Statuses, stages,
null descriptions, ties in the orderings, whole-second timestamps and text that JSON must escape
are all there, so that comparing the studio's answers with the floor's means something.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    DEFAULT_AUDIO_SETTINGS,
    GenerationJob,
    JobStage,
    JobStatus,
    User,
    Video,
    VideoInputType,
    VideoStatus,
    VoiceProfile,
)
from db.seed import _PEOPLE, _TOPICS, _URLS, _VOICES

PAGE_QUERY = """query Page {
  viewer {
    videos(first: 20) {
      edges {
        node {
          id title description status progress createdAt updatedAt
          voiceProfile { name }
          latestJob { status stage progress }
        }
      }
    }
  }
}"""

NESTED_QUERY = """query Nested {
  viewer {
    videos(first: 100) {
      edges {
        node {
          id title
          jobs(first: 5) { edges { node { id status stage progress } } }
        }
      }
    }
  }
}"""

SMALL_QUERY = """query Small($id: ID!) {
  video(id: $id) {
    id title status
    jobs(first: 5) { edges { node { id status progress } } }
  }
}"""

QUERIES = {"page": PAGE_QUERY, "nested": NESTED_QUERY, "small": SMALL_QUERY}

USERS = 10
VIDEOS_PER_USER = 100
DELETED_VIDEOS_PER_USER = 5
JOBS_PER_VIDEO = 5
VOICE_PROFILES_PER_USER = 3

# Text that JSON has to escape, and characters outside ASCII, in some titles and descriptions.
_ODD_TITLES = [
    'The "quiet" café — notes on espresso',
    "Backslashes \\ and tabs\tin a title",
    "Ünïcödé everywhere: 東京の夜 🎬",
]
_ODD_DESCRIPTION = 'Line one.\nLine two, with a "quote" and a backslash \\.\r\nEnd — fin. ✓'
_EARLIER_OUTCOMES = (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCEEDED)
# The newest job of a video tells its status; only it may be active (one active job per video).
_LATEST_JOB = {
    VideoStatus.DRAFT: (JobStatus.CANCELLED, JobStage.SCRIPT),
    VideoStatus.QUEUED: (JobStatus.QUEUED, None),
    VideoStatus.PROCESSING: (JobStatus.RUNNING, JobStage.VOICE),
    VideoStatus.READY: (JobStatus.SUCCEEDED, JobStage.RENDER),
    VideoStatus.PUBLISHED: (JobStatus.SUCCEEDED, JobStage.RENDER),
    VideoStatus.ERROR: (JobStatus.FAILED, JobStage.CAPTIONS),
}


@dataclass(frozen=True)
class Seeded:
    """Who the benchmark reads as, and a video of theirs for the small query."""

    user_ids: list[uuid.UUID]
    small_video_ids: dict[uuid.UUID, uuid.UUID]  # user -> one of their live videos

    @property
    def viewer_id(self) -> uuid.UUID:
        return self.user_ids[0]


async def seed(session: AsyncSession, *, random_seed: int = 11) -> Seeded:
    """Insert everything in the caller's transaction (bulk inserts: a few seconds)."""
    rng = random.Random(random_seed)  # noqa: S311 (reproducible data, nothing secret)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    users: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    small: dict[uuid.UUID, uuid.UUID] = {}
    for index in range(USERS):
        name = _PEOPLE[index % len(_PEOPLE)]
        user_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        users.append(
            {"id": user_id, "email": f"bench.{index}@bench.studio.test", "display_name": name}
        )
        user_profiles = _profiles(user_id, now, rng)
        profiles.extend(user_profiles)
        user_videos = _videos(user_id, [p["id"] for p in user_profiles], now, rng)
        videos.extend(user_videos)
        for video in user_videos:
            jobs.extend(_jobs(video, rng))
        live = [video for video in user_videos if video["deleted_at"] is None]
        small[user_id] = live[len(live) // 3]["id"]
    for model, rows in ((User, users), (VoiceProfile, profiles), (Video, videos)):
        await session.execute(insert(model), rows)
    await session.execute(insert(GenerationJob), jobs)
    return Seeded(list(small), small)


def _profiles(user_id: uuid.UUID, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for position, (name, language, settings) in enumerate(
        rng.sample(_VOICES, k=VOICE_PROFILES_PER_USER)
    ):
        created = now - timedelta(days=60 - position, microseconds=rng.randrange(1_000_000))
        rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "user_id": user_id,
                "name": name,
                "description": f"{name} ({language})",
                "language": language,
                "engine_settings": dict(settings),
                "created_at": created,
                "updated_at": created,
                # The last one was deleted: videos that used it show no voice.
                "deleted_at": now if position == VOICE_PROFILES_PER_USER - 1 else None,
            }
        )
    return rows


def _videos(
    user_id: uuid.UUID, profile_ids: list[uuid.UUID], now: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    statuses = list(VideoStatus)
    created = now - timedelta(days=1)
    for index in range(VIDEOS_PER_USER + DELETED_VIDEOS_PER_USER):
        if index % 25 != 24:  # every 25th video shares the previous one's created_at (id decides)
            created -= timedelta(seconds=rng.randint(30, 4000), microseconds=rng.randrange(10**6))
            if index % 17 == 0:  # a whole second: Python's isoformat() then omits the fraction
                created = created.replace(microsecond=0)
        status = statuses[index % len(statuses)]
        from_url = index % 7 == 3
        title, description = rng.choice(_TOPICS)
        if index % 11 == 5:
            title = _ODD_TITLES[index % len(_ODD_TITLES)]
        if index % 13 == 6:
            description = _ODD_DESCRIPTION
        rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "user_id": user_id,
                "voice_profile_id": rng.choice(profile_ids) if index % 5 else None,
                "title": f"{title} #{index + 1}",
                "description": None if from_url else description,
                "input_type": VideoInputType.URL if from_url else VideoInputType.DESCRIPTION,
                "source_url": rng.choice(_URLS) if from_url else None,
                "audio_settings": DEFAULT_AUDIO_SETTINGS,
                "status": status,
                "progress": _progress(status, rng),
                "created_at": created,
                "updated_at": created + timedelta(minutes=rng.randint(0, 600)),
                # The last few are soft-deleted: no answer may show them.
                "deleted_at": now if index >= VIDEOS_PER_USER else None,
            }
        )
    return rows


def _progress(status: VideoStatus, rng: random.Random) -> int:
    if status is VideoStatus.PROCESSING:
        return rng.randint(5, 95)
    return 100 if status in (VideoStatus.READY, VideoStatus.PUBLISHED) else 0


def _jobs(video: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Five runs, oldest first; the newest one matches the video's status."""
    rows = []
    queued = video["created_at"] + timedelta(minutes=1)
    for position in range(JOBS_PER_VIDEO):
        latest = position == JOBS_PER_VIDEO - 1
        if not (latest and rng.random() < 0.1):  # sometimes two runs queued at the same instant
            queued += timedelta(minutes=rng.randint(1, 90), microseconds=rng.randrange(10**6))
        if latest:
            status, stage = _LATEST_JOB[video["status"]]
        else:
            status = rng.choice(_EARLIER_OUTCOMES)
            stage = JobStage.RENDER if status is JobStatus.SUCCEEDED else rng.choice(list(JobStage))
        rows.append(_job(video["id"], status, stage, queued, rng))
    return rows


def _job(
    video_id: uuid.UUID,
    status: JobStatus,
    stage: JobStage | None,
    queued: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    started = None if status is JobStatus.QUEUED else queued + timedelta(seconds=2)
    took = rng.randint(20_000, 180_000)
    done = status not in (JobStatus.QUEUED, JobStatus.RUNNING)
    progress = {JobStatus.SUCCEEDED: 100, JobStatus.QUEUED: 0}.get(status, rng.randint(1, 95))
    return {
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "video_id": video_id,
        "status": status,
        "stage": stage,
        "progress": progress,
        "attempt": 0 if status is JobStatus.QUEUED else rng.randint(1, 3),
        "error": "The narration could not be rendered." if status is JobStatus.FAILED else None,
        "queued_at": queued,
        "available_at": queued,
        "started_at": started,
        "finished_at": queued + timedelta(milliseconds=2000 + took) if done else None,
        "execution_time_ms": took if done else None,
    }
