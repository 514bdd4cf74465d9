"""How fast the read side answers: the nested query of tests/schema/test_batching.py over HTTP.

    .venv/bin/python bench/bench_read_api.py [--requests 200] [--videos 100]

Creates a throwaway database (on the server the tests would use), seeds one user with
``--videos`` videos, three voice profiles and a few jobs per video, starts the app in-process
behind httpx (no network), and times ``--requests`` sequential requests of the nested query for
page sizes 1, 10 and 100. Prints a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth import issue_access_token
from app.main import create_app
from app.settings import load_settings
from db.models import GenerationJob, JobStatus, User, Video, VoiceProfile
from tests.schema.test_batching import NESTED_QUERY
from tests.support.server import choose_server


async def seed_bench_data(sessionmaker: async_sessionmaker[AsyncSession], videos: int) -> uuid.UUID:
    """One user with ``videos`` videos, three voice profiles and 0 to 3 jobs per video."""
    async with sessionmaker.begin() as session:
        user = User(email="bench@example.com")
        session.add(user)
        await session.flush()
        voices = [VoiceProfile(user_id=user.id, name=f"Voice {i}") for i in range(3)]
        session.add_all(voices)
        await session.flush()
        for index in range(videos):
            video = Video(
                user_id=user.id,
                title=f"Video {index}",
                description="Words.",
                input_type="DESCRIPTION",
                voice_profile_id=voices[index % 3].id,
            )
            session.add(video)
            await session.flush()
            session.add_all(
                GenerationJob(video_id=video.id, status=JobStatus.FAILED, attempt=1)
                for _ in range(index % 4)
            )
        return user.id


async def run(
    database_url: str, requests: int, videos: int
) -> list[tuple[int, float, float, float]]:
    settings = load_settings(database_url=database_url, log_level="WARNING")
    app = create_app(settings)
    rows: list[tuple[int, float, float, float]] = []
    async with app.router.lifespan_context(app):
        user_id = await seed_bench_data(app.state.studio.sessionmaker, videos)
        token = issue_access_token(settings, user_id).token
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for n in (1, 10, 100):
                body = {"query": NESTED_QUERY, "variables": {"n": n}}
                headers = {"Authorization": f"Bearer {token}"}
                for _ in range(10):  # warm-up: connections, caches
                    (await client.post("/graphql", json=body, headers=headers)).raise_for_status()
                timings = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await client.post("/graphql", json=body, headers=headers)
                    timings.append((time.perf_counter() - started) * 1000)
                    assert "errors" not in response.json(), response.text
                timings.sort()
                p95 = timings[int(len(timings) * 0.95) - 1]
                rows.append(
                    (n, statistics.median(timings), p95, len(timings) / (sum(timings) / 1000))
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--videos", type=int, default=100)
    args = parser.parse_args()
    server = choose_server()
    database = server.create_database(prefix="studio_bench")
    try:
        rows = asyncio.run(run(database.render(hide_password=False), args.requests, args.videos))
    finally:
        server.drop_database(database)
        server.close()
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, PostgreSQL: {server.kind}"
    )
    print("| page size N | median ms | p95 ms | requests/s (sequential) |")
    print("| --- | --- | --- | --- |")
    for n, median, p95, rate in rows:
        print(f"| {n} | {median:.1f} | {p95:.1f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
