"""Generation mutations (SPEC §4): start a run of a video, cancel a run.

Both write the job and its video in one transaction with the audit record
(`db.queries.job_queue`); workers pick the job up from there (`app.worker`).
"""

from __future__ import annotations

import strawberry

from db.queries import job_queue
from schema.context import Info
from schema.relay import from_global_id
from schema.transactions import mutation
from schema.types.generation_job import GenerationJob


@strawberry.type(name="GenerationJobPayload")
class GenerationJobPayload:
    job: GenerationJob


@strawberry.type
class GenerationMutations:
    @mutation(
        "Queue a generation run of the video; the video becomes QUEUED. CONFLICT while a run "
        "is queued or running."
    )
    async def start_generation(self, info: Info, video_id: strawberry.ID) -> GenerationJobPayload:
        viewer = await info.context.require_viewer()
        _, video = from_global_id(video_id, expected="Video", field="videoId")
        job = await info.context.gate.run(
            job_queue.enqueue,
            viewer.user_id,
            video,
            request_id=info.context.request_id,
            max_attempts=info.context.settings.job_max_attempts,
        )
        return GenerationJobPayload(job=GenerationJob(row=job))

    @mutation(
        "Cancel a queued or running generation run (a running stage stops within a second); "
        "the video returns to READY if an earlier run succeeded, else DRAFT. CONFLICT once the "
        "run has finished."
    )
    async def cancel_generation(self, info: Info, job_id: strawberry.ID) -> GenerationJobPayload:
        viewer = await info.context.require_viewer()
        _, job_uuid = from_global_id(job_id, expected="GenerationJob", field="jobId")
        job = await info.context.gate.run(
            job_queue.cancel, viewer.user_id, job_uuid, request_id=info.context.request_id
        )
        return GenerationJobPayload(job=GenerationJob(row=job))
