"""Demo data for `studio seed`: people with voice profiles, videos in every status, jobs in every
status. Deterministic for a given random seed, and safe to run twice: a demo user that already
exists is left as it is, so a second run adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
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
from db.queries.users import ensure_user

DEMO_DOMAIN = "demo.studio.test"

_PEOPLE = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Tim Berners-Lee",
    "Radia Perlman",
    "Ken Thompson",
    "Frances Allen",
    "John McCarthy",
    "Hedy Lamarr",
    "Linus Torvalds",
]
_VOICES = [
    ("Warm narrator", "en", {"voice": "en-us", "pitch": 45, "rate": 165}),
    ("Calm explainer", "en", {"voice": "en-gb", "pitch": 50, "rate": 150}),
    ("Conteur", "fr", {"voice": "fr-fr", "pitch": 50, "rate": 160}),
    ("Erzählerin", "de", {"voice": "de", "pitch": 60, "rate": 155}),
    ("Narradora", "es", {"voice": "es", "pitch": 55, "rate": 170}),
]
_TOPICS = [
    (
        "How solar panels work",
        "Photovoltaic cells turn sunlight into electricity. Each cell is a sandwich of "
        "silicon layers. Light knocks electrons loose, and the layers push them one way.",
    ),
    (
        "A short history of the bicycle",
        "The first bicycles had no pedals. Riders pushed along with "
        "their feet. Chains, gears and air-filled tyres came later and changed everything.",
    ),
    (
        "Why the sky is blue",
        "Sunlight holds every colour. Air scatters short blue waves far more "
        "than long red ones, so blue reaches our eyes from every direction.",
    ),
    (
        "Making sourdough at home",
        "Sourdough needs only flour, water and salt. A starter of wild "
        "yeast does the rising. Time, not kneading, builds the flavour.",
    ),
    (
        "The water cycle",
        "Water evaporates from seas and lakes, condenses into clouds and falls as "
        "rain. Rivers carry it back to the sea, and the cycle begins again.",
    ),
    (
        "Getting started with PostgreSQL",
        "PostgreSQL is a relational database. Tables hold rows, "
        "indexes make lookups fast, and transactions keep data consistent.",
    ),
]
_URLS = [
    "https://en.wikipedia.org/wiki/Video",
    "https://www.postgresql.org/about/",
    "https://example.com/blog/launch-announcement",
]
# Every video status, in the order they are handed out.
_STATUSES = list(VideoStatus)


@dataclass(frozen=True)
class SeedResult:
    users_created: int
    users_skipped: int
    voice_profiles: int
    videos: int
    jobs: int


async def seed(
    session: AsyncSession,
    *,
    users: int = 5,
    videos_per_user: int = 12,
    random_seed: int = 7,
    on_user: Callable[[str], None] | None = None,
) -> SeedResult:
    """Add demo content in the caller's transaction; ``on_user`` is told of each user done."""
    rng = random.Random(random_seed)
    created = skipped = profiles = videos = jobs = 0
    for index in range(users):
        name = _PEOPLE[index % len(_PEOPLE)]
        email = _email(name, index)
        user, is_new = await ensure_user(session, email, display_name=name)
        if is_new:
            created += 1
            user_profiles = _voice_profiles(user, rng)
            session.add_all(user_profiles)
            await session.flush()
            user_videos = _videos(user, user_profiles, videos_per_user, rng)
            session.add_all(user_videos)
            await session.flush()
            user_jobs = [job for video in user_videos for job in _jobs_for(video, rng)]
            session.add_all(user_jobs)
            await session.flush()
            profiles += len(user_profiles)
            videos += len(user_videos)
            jobs += len(user_jobs)
        else:
            skipped += 1
        if on_user is not None:
            on_user(email)
    return SeedResult(created, skipped, profiles, videos, jobs)


async def count_rows(session: AsyncSession) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model in (User, VoiceProfile, Video, GenerationJob):
        counts[model.__tablename__] = (
            await session.scalar(select(func.count()).select_from(model)) or 0
        )
    return counts


def _email(name: str, index: int) -> str:
    local = name.lower().replace(" ", ".").replace("-", "")
    return f"{local}.{index}@{DEMO_DOMAIN}"


def _voice_profiles(user: User, rng: random.Random) -> list[VoiceProfile]:
    chosen = rng.sample(_VOICES, k=rng.randint(1, 3))
    return [
        VoiceProfile(
            user_id=user.id,
            name=name,
            description=f"{name} ({language})",
            language=language,
            engine_settings=dict(settings),
        )
        for name, language, settings in chosen
    ]


def _videos(
    user: User, profiles: list[VoiceProfile], count: int, rng: random.Random
) -> list[Video]:
    result = []
    for index in range(count):
        status = _STATUSES[index % len(_STATUSES)]
        from_url = index % 4 == 3
        title, description = rng.choice(_TOPICS)
        video = Video(
            user_id=user.id,
            voice_profile_id=rng.choice(profiles).id if rng.random() < 0.8 else None,
            title=f"{title} #{index + 1}",
            description=None if from_url else description,
            input_type=VideoInputType.URL if from_url else VideoInputType.DESCRIPTION,
            source_url=rng.choice(_URLS) if from_url else None,
            audio_settings=DEFAULT_AUDIO_SETTINGS | {"speed": rng.choice([0.9, 1.0, 1.1])},
            status=status,
            progress=_video_progress(status, rng),
            error_message="The page at the URL could not be fetched (HTTP 404)."
            if status is VideoStatus.ERROR
            else None,
        )
        if status in (VideoStatus.READY, VideoStatus.PUBLISHED):
            video.script = _script(description or title)
        if status is VideoStatus.PUBLISHED:
            video.published_to = [
                {"target": "local", "url": None, "publishedAt": "2026-01-01T00:00:00+00:00"}
            ]
        result.append(video)
    return result


def _video_progress(status: VideoStatus, rng: random.Random) -> int:
    if status is VideoStatus.PROCESSING:
        return rng.randint(5, 95)
    return 100 if status in (VideoStatus.READY, VideoStatus.PUBLISHED) else 0


def _script(text: str) -> dict[str, Any]:
    sentences = [part.strip() + "." for part in text.split(".") if part.strip()]
    segments, start = [], 0
    for index, sentence in enumerate(sentences):
        duration = 400 * len(sentence.split())
        segments.append(
            {"index": index, "text": sentence, "startMs": start, "endMs": start + duration}
        )
        start += duration
    return {"segments": segments}


def _jobs_for(video: Video, rng: random.Random) -> list[GenerationJob]:
    """Jobs that tell the video's story: every job status appears across a user's videos."""
    base = datetime.now().astimezone() - timedelta(days=rng.randint(1, 30))

    def finished(status: JobStatus, attempt: int, error: str | None = None) -> GenerationJob:
        took = rng.randint(20_000, 180_000)
        return GenerationJob(
            video_id=video.id,
            status=status,
            stage=JobStage.RENDER if status is JobStatus.SUCCEEDED else JobStage.SCRIPT,
            progress=100 if status is JobStatus.SUCCEEDED else rng.randint(0, 60),
            attempt=attempt,
            error=error,
            queued_at=base,
            started_at=base + timedelta(seconds=2),
            finished_at=base + timedelta(milliseconds=2000 + took),
            execution_time_ms=took,
        )

    match video.status:
        case VideoStatus.DRAFT:
            return (
                [finished(JobStatus.CANCELLED, 1, "Cancelled by the owner.")]
                if rng.random() < 0.5
                else []
            )
        case VideoStatus.QUEUED:
            return [GenerationJob(video_id=video.id, status=JobStatus.QUEUED)]
        case VideoStatus.PROCESSING:
            return [
                GenerationJob(
                    video_id=video.id,
                    status=JobStatus.RUNNING,
                    stage=JobStage.VOICE,
                    progress=video.progress,
                    attempt=1,
                    started_at=base,
                )
            ]
        case VideoStatus.READY | VideoStatus.PUBLISHED:
            return [finished(JobStatus.SUCCEEDED, 1)]
        case VideoStatus.ERROR:
            return [finished(JobStatus.FAILED, 3, video.error_message)]
