from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.errors import BadUserInput
from db import models
from db.queries.videos import VideoFilter as VideoFilterQuery
from db.queries.videos import VideoOrder as VideoOrderQuery
from schema.context import Info
from schema.relay import (
    Connection,
    ConnectionArgs,
    CursorCodec,
    Node,
    build_connection,
    to_global_id,
)
from schema.types.enums import OrderDirection, VideoInputType, VideoOrderField, VideoStatus
from schema.types.video_data import AudioSettings, CaptionTrack, Publication, Script

if TYPE_CHECKING:
    from schema.types.generation_job import GenerationJob
    from schema.types.user import User
    from schema.types.voice_profile import VoiceProfile

MAX_SEARCH_LENGTH = 200


@strawberry.input(name="VideoFilter")
class VideoFilter:
    status: list[VideoStatus] | None = None
    search: str | None = None
    input_type: VideoInputType | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_query(self) -> VideoFilterQuery:
        if self.search is not None and len(self.search) > MAX_SEARCH_LENGTH:
            raise BadUserInput(
                f"`search` is limited to {MAX_SEARCH_LENGTH} characters.", field="filter.search"
            )
        return VideoFilterQuery(
            statuses=tuple(dict.fromkeys(self.status or ())),
            search=self.search.strip() or None if self.search else None,
            input_type=self.input_type,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.input(name="VideoOrder")
class VideoOrder:
    field: VideoOrderField = VideoOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.DESC

    def to_query(self) -> VideoOrderQuery:
        return VideoOrderQuery(
            field=self.field.value, descending=self.direction is OrderDirection.DESC
        )


@strawberry.type(name="Video")
class Video(Node):
    row: strawberry.Private[models.Video]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return to_global_id("Video", self.row.id)

    @strawberry.field
    def title(self) -> str:
        return self.row.title

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def input_type(self) -> VideoInputType:
        return self.row.input_type

    @strawberry.field
    def source_url(self) -> str | None:
        return self.row.source_url

    @strawberry.field
    def status(self) -> VideoStatus:
        return self.row.status

    @strawberry.field
    def progress(self) -> int:
        return self.row.progress

    @strawberry.field
    def error_message(self) -> str | None:
        return self.row.error_message

    @strawberry.field
    def audio_settings(self) -> AudioSettings:
        return AudioSettings.from_json(self.row.audio_settings)

    @strawberry.field
    def script(self) -> Script | None:
        return Script.from_json(self.row.script)

    @strawberry.field
    def caption_tracks(self) -> list[CaptionTrack]:
        return CaptionTrack.from_json(self.row.caption_tracks)

    @strawberry.field
    def published_to(self) -> list[Publication]:
        return Publication.from_json(self.row.published_to)

    @strawberry.field
    async def owner(self, info: Info) -> Annotated[User, strawberry.lazy("schema.types.user")]:
        from schema.types.user import User

        user = await info.context.loaders.user_by_id.load(self.row.user_id)
        if user is None:  # a visible video always has the viewer as owner
            raise LookupError(f"owner {self.row.user_id} of video {self.row.id} not loadable")
        return User(row=user)

    @strawberry.field
    async def voice_profile(
        self, info: Info
    ) -> Annotated[VoiceProfile, strawberry.lazy("schema.types.voice_profile")] | None:
        from schema.types.voice_profile import VoiceProfile

        if self.row.voice_profile_id is None:
            return None
        profile = await info.context.loaders.voice_profile_by_id.load(self.row.voice_profile_id)
        return None if profile is None else VoiceProfile(row=profile)

    @strawberry.field(description="Generation runs of this video, newest first.")
    async def jobs(
        self,
        info: Info,
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        last: int | None = strawberry.UNSET,
        before: str | None = strawberry.UNSET,
    ) -> Connection[Annotated[GenerationJob, strawberry.lazy("schema.types.generation_job")]]:
        from schema.types.generation_job import job_connection

        return await job_connection(info, self.row.id, ConnectionArgs(first, after, last, before))

    @strawberry.field(description="The most recently queued generation run, if any.")
    async def latest_job(
        self, info: Info
    ) -> Annotated[GenerationJob, strawberry.lazy("schema.types.generation_job")] | None:
        from schema.types.generation_job import GenerationJob

        job = await info.context.loaders.latest_job_by_video.load(self.row.id)
        return None if job is None else GenerationJob(row=job)

    @strawberry.field(description="A URL a <video> element can play; set once READY.")
    def media_url(self) -> str | None:
        return None  # media files arrive with the rendering pipeline

    @strawberry.field(description="A still image for the player; set once READY.")
    def poster_url(self) -> str | None:
        return None

    @strawberry.field(description="Length of the rendered video in milliseconds; set once READY.")
    def duration_ms(self) -> int | None:
        return None

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


async def video_connection(
    info: Info,
    owner_id: uuid.UUID,
    args: ConnectionArgs,
    video_filter: VideoFilter | None,
    order_by: VideoOrder | None,
) -> Connection[Video]:
    """An owner's videos as a connection (``Query.videos`` and ``User.videos``)."""
    loaders = info.context.loaders
    query_filter = (video_filter or VideoFilter()).to_query()
    order = (order_by or VideoOrder()).to_query()
    codec = CursorCodec(
        secret=info.context.cursor_key,
        ordering=f"videos:{order.field}:{'DESC' if order.descending else 'ASC'}",
        value_type=str if order.field == "TITLE" else datetime,
    )
    page = args.page_request(codec)
    column = order.ordering().column.key
    slice_ = await loaders.videos_by_owner(query_filter, order, page).load(owner_id)
    count_loader = loaders.video_count_by_owner(query_filter)
    return build_connection(
        slice_,
        codec=codec,
        order_value=lambda row: getattr(row, column),
        row_id=lambda row: row.id,
        node=lambda row: Video(row=row),
        count=lambda: count_loader.load(owner_id),
    )
