from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.queries.jobs import JOB_ORDERING
from schema.context import Info
from schema.mapping import column, global_id, relation
from schema.paging import Pages
from schema.relay import Node
from schema.types.enums import JobStage, JobStatus

if TYPE_CHECKING:
    from schema.types.video import Video


@strawberry.type(name="GenerationJob")
class GenerationJob(Node):
    row: strawberry.Private[models.GenerationJob]

    async def _video(self, info: Info) -> Video:
        from schema.types.video import Video

        video = await info.context.loaders.video_by_id.load(self.row.video_id)
        if video is None:  # a visible job always has a visible video (same owner filter)
            raise LookupError(f"video {self.row.video_id} of job {self.row.id} not loadable")
        return Video(row=video)

    id: strawberry.ID = global_id(models.GenerationJob.id, "GenerationJob")
    video: Annotated[Video, strawberry.lazy("schema.types.video")] = strawberry.field(
        resolver=_video,
        metadata=relation(models.GenerationJob.video_id, models.Video.id, loader="video_by_id"),
    )
    status: JobStatus = column(models.GenerationJob.status)
    stage: JobStage | None = column(models.GenerationJob.stage)
    progress: int = column(models.GenerationJob.progress)
    attempt: int = column(models.GenerationJob.attempt)
    error: str | None = column(models.GenerationJob.error)
    queued_at: datetime = column(models.GenerationJob.queued_at)
    started_at: datetime | None = column(models.GenerationJob.started_at)
    finished_at: datetime | None = column(models.GenerationJob.finished_at)
    execution_time_ms: int | None = column(models.GenerationJob.execution_time_ms)
    version: int = column(
        models.GenerationJob.version,
        description="Grows by one with every change of the job. A subscription given the last "
        "version a client saw (`afterVersion`) first sends the status changes it missed.",
    )


#: A video's jobs (``Video.jobs``), newest first.
JOB_PAGES = Pages[models.GenerationJob, GenerationJob](
    cursors="jobs",
    ordering=JOB_ORDERING,
    page_loader=lambda loaders, page: loaders.jobs_by_video(page),
    count_loader=lambda loaders: loaders.job_count_by_video(),
    node=lambda row: GenerationJob(row=row),
    by_id=lambda loaders: loaders.job_by_id,
)
