"""Every relationship goes through a dataloader: the statement count does not grow with N
(SPEC §5 Batching). A statement count is not a timing, so it is asserted here."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.settings import Settings, load_settings
from db.models import JobStatus, User
from tests.factories import make_job, make_user, make_video, make_voice_profile
from tests.support.graphql import GraphQLClient, count_statements

NESTED_QUERY = """
query Nested($n: Int!) {
  viewer {
    videos(first: $n) {
      totalCount
      edges {
        node {
          title
          owner { email }
          voiceProfile { name }
          latestJob { status progress }
          jobs(first: 5) {
            totalCount
            pageInfo { hasNextPage endCursor }
            edges { node { status queuedAt video { title } } }
          }
        }
      }
    }
  }
}
"""

# One each: the viewer, the videos page, its totalCount, the voice profiles, the latest jobs,
# the jobs pages, their totalCount. Free: `owner` (the viewer, cached) and `job.video` (the
# videos of the page, primed in the video_by_id loader).
EXPECTED_STATEMENTS = 7


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The resolver path: its dataloaders are what this module measures (the compiled path's
    one statement is measured in test_compiled_reads.py)."""
    return load_settings(database_url=settings.database_url, compiled_reads=False)


async def _user_with_videos(session: AsyncSession, n: int) -> User:
    user = await make_user(session)
    voices = [await make_voice_profile(session, user, name=f"Voice {i}") for i in range(3)]
    for index in range(n):
        video = await make_video(
            session, user, title=f"Video {index}", voice_profile_id=voices[index % 3].id
        )
        for status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SUCCEEDED)[: index % 4]:
            await make_job(session, video, status=status, attempt=1)
    await session.commit()
    return user


@pytest.mark.parametrize("n", [1, 10, 100])
async def test_nested_query_runs_a_fixed_number_of_statements(
    n: int, session: AsyncSession, connection: AsyncConnection, graphql: GraphQLClient
) -> None:
    user = await _user_with_videos(session, n)
    with count_statements(connection) as counter:
        data = (await graphql.as_user(user.id).execute(NESTED_QUERY, {"n": n})).ok()
    videos = data["viewer"]["videos"]
    assert videos["totalCount"] == n
    assert len(videos["edges"]) == n
    assert all(edge["node"]["owner"]["email"] == user.email for edge in videos["edges"])
    assert counter.count == EXPECTED_STATEMENTS, "\n\n".join(counter.statements)


async def test_each_parent_pages_its_own_jobs(
    session: AsyncSession, graphql: GraphQLClient
) -> None:
    user = await make_user(session)
    busy = await make_video(session, user, title="Busy")
    quiet = await make_video(session, user, title="Quiet")
    for _ in range(7):
        await make_job(session, busy, status=JobStatus.FAILED, attempt=1)
    await make_job(session, quiet, status=JobStatus.SUCCEEDED, attempt=1)
    await session.commit()

    query = """{ videos(orderBy: {field: TITLE, direction: ASC}) { edges { node {
        title jobs(first: 5) { totalCount pageInfo { hasNextPage } edges { node { status } } }
    } } } }"""
    edges = (await graphql.as_user(user.id).execute(query)).ok()["videos"]["edges"]
    jobs = {edge["node"]["title"]: edge["node"]["jobs"] for edge in edges}
    assert len(jobs["Busy"]["edges"]) == 5
    assert jobs["Busy"]["totalCount"] == 7
    assert jobs["Busy"]["pageInfo"]["hasNextPage"] is True
    assert len(jobs["Quiet"]["edges"]) == 1
    assert jobs["Quiet"]["pageInfo"]["hasNextPage"] is False


async def test_total_count_is_not_queried_unless_asked(
    session: AsyncSession, connection: AsyncConnection, graphql: GraphQLClient
) -> None:
    user = await _user_with_videos(session, 3)
    with count_statements(connection) as counter:
        (await graphql.as_user(user.id).execute("{ videos { edges { node { title } } } }")).ok()
    assert not any("count(" in statement.lower() for statement in counter.statements)
    assert counter.count == 2  # the viewer's account (still active?) and the page
