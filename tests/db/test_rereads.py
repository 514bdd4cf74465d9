"""`db.queries.rereads`: many viewers' rows in one statement, each checked against its own
viewer as the single-viewer functions check it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from db.queries.rereads import jobs_by_owned_ids, videos_by_owned_ids
from tests.factories import make_job, make_user, make_video


async def test_each_key_gets_only_a_row_its_own_viewer_may_see(session: AsyncSession) -> None:
    ann, bob = await make_user(session), await make_user(session)
    anns, bobs = await make_video(session, ann), await make_video(session, bob)
    deleted = await make_video(session, ann, deleted_at=datetime.now(UTC))
    ann_job, bob_job = await make_job(session, anns), await make_job(session, bobs)
    hidden_job = await make_job(session, deleted)
    await session.flush()

    keys = [
        (ann.id, ann_job.id),
        (bob.id, bob_job.id),
        (bob.id, ann_job.id),  # someone else's
        (ann.id, hidden_job.id),  # its video is deleted
        (ann.id, uuid.uuid4()),  # none such
    ]
    jobs = await jobs_by_owned_ids(session, keys)
    assert {key: job.id for key, job in jobs.items()} == {
        (ann.id, ann_job.id): ann_job.id,
        (bob.id, bob_job.id): bob_job.id,
    }

    videos = await videos_by_owned_ids(
        session, [(ann.id, anns.id), (ann.id, bobs.id), (bob.id, bobs.id), (ann.id, deleted.id)]
    )
    assert {key: video.id for key, video in videos.items()} == {
        (ann.id, anns.id): anns.id,
        (bob.id, bobs.id): bobs.id,
    }
