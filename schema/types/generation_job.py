from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.context import Info
from schema.mapping import column, global_id, relation
from schema.relay import (
    Connection,
    ConnectionArgs,
    CursorCodec,
    Node,
    build_connection,
)
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


async def job_connection(
    info: Info, video_id: uuid.UUID, args: ConnectionArgs
) -> Connection[GenerationJob]:
    loaders = info.context.loaders
    codec = CursorCodec(
        secret=info.context.cursor_key, ordering="jobs:QUEUED_AT:DESC", value_type=datetime
    )
    slice_ = await loaders.jobs_by_video(args.page_request(codec)).load(video_id)
    for row in slice_.rows:
        loaders.job_by_id.prime(row.id, row)
    count_loader = loaders.job_count_by_video()
    return build_connection(
        slice_,
        codec=codec,
        order_value=lambda row: row.queued_at,
        row_id=lambda row: row.id,
        node=lambda row: GenerationJob(row=row),
        count=lambda: count_loader.load(video_id),
    )
