from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.context import Info
from schema.relay import (
    Connection,
    ConnectionArgs,
    CursorCodec,
    Node,
    build_connection,
    to_global_id,
)
from schema.types.enums import JobStage, JobStatus

if TYPE_CHECKING:
    from schema.types.video import Video


@strawberry.type(name="GenerationJob")
class GenerationJob(Node):
    row: strawberry.Private[models.GenerationJob]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return to_global_id("GenerationJob", self.row.id)

    @strawberry.field
    async def video(self, info: Info) -> Annotated[Video, strawberry.lazy("schema.types.video")]:
        from schema.types.video import Video

        video = await info.context.loaders.video_by_id.load(self.row.video_id)
        if video is None:  # a visible job always has a visible video (same owner filter)
            raise LookupError(f"video {self.row.video_id} of job {self.row.id} not loadable")
        return Video(row=video)

    @strawberry.field
    def status(self) -> JobStatus:
        return self.row.status

    @strawberry.field
    def stage(self) -> JobStage | None:
        return self.row.stage

    @strawberry.field
    def progress(self) -> int:
        return self.row.progress

    @strawberry.field
    def attempt(self) -> int:
        return self.row.attempt

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def queued_at(self) -> datetime:
        return self.row.queued_at

    @strawberry.field
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return self.row.finished_at

    @strawberry.field
    def execution_time_ms(self) -> int | None:
        return self.row.execution_time_ms


async def job_connection(
    info: Info, video_id: uuid.UUID, args: ConnectionArgs
) -> Connection[GenerationJob]:
    loaders = info.context.loaders
    codec = CursorCodec(
        secret=info.context.cursor_key, ordering="jobs:QUEUED_AT:DESC", value_type=datetime
    )
    slice_ = await loaders.jobs_by_video(args.page_request(codec)).load(video_id)
    count_loader = loaders.job_count_by_video()
    return build_connection(
        slice_,
        codec=codec,
        order_value=lambda row: row.queued_at,
        row_id=lambda row: row.id,
        node=lambda row: GenerationJob(row=row),
        count=lambda: count_loader.load(video_id),
    )
