from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from app.errors import BadUserInput
from db import models
from db.queries.videos import VideoFilter as VideoFilterQuery
from db.queries.videos import VideoOrder as VideoOrderQuery
from schema.context import Info
from schema.mapping import column, computed, connection, global_id, relation, signed_media
from schema.paging import Pages, paged
from schema.relay import Connection, ConnectionArgs, Node
from schema.types.enums import OrderDirection, VideoInputType, VideoOrderField, VideoStatus
from schema.types.video_data import AudioSettings, CaptionTrack, Publication, Script

if TYPE_CHECKING:
    from schema.types.generation_job import GenerationJob
    from schema.types.user import User
    from schema.types.voice_profile import VoiceProfile

MAX_SEARCH_LENGTH = 200
T = TypeVar("T")


@strawberry.input(name="VideoFilter")
class VideoFilter:
    # UNSET (not None) defaults: the SDL shows no default, as SPEC writes it; absent and null
    # mean the same (no condition).
    status: list[VideoStatus] | None = strawberry.UNSET
    search: str | None = strawberry.UNSET
    input_type: VideoInputType | None = strawberry.UNSET
    created_after: datetime | None = strawberry.UNSET
    created_before: datetime | None = strawberry.UNSET

    def to_query(self) -> VideoFilterQuery:
        search = _given(self.search)
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise BadUserInput(
                f"`search` is limited to {MAX_SEARCH_LENGTH} characters.", field="filter.search"
            )
        return VideoFilterQuery(
            statuses=tuple(dict.fromkeys(_given(self.status) or ())),
            search=search,  # "" or "   " is a search too: for no word, it finds nothing
            input_type=_given(self.input_type),
            created_after=_given(self.created_after),
            created_before=_given(self.created_before),
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

    # Resolvers of the fields that go through a loader; the fields are declared below, in the
    # SPEC's order.
    async def _owner(self, info: Info) -> User:
        from schema.types.user import User

        user = await info.context.loaders.user_by_id.load(self.row.user_id)
        if user is None:  # a visible video always has the viewer as owner
            raise LookupError(f"owner {self.row.user_id} of video {self.row.id} not loadable")
        return User(row=user)

    async def _voice_profile(self, info: Info) -> VoiceProfile | None:
        from schema.types.voice_profile import VoiceProfile

        if self.row.voice_profile_id is None:
            return None
        profile = await info.context.loaders.voice_profile_by_id.load(self.row.voice_profile_id)
        return None if profile is None else VoiceProfile(row=profile)

    @paged
    async def _jobs(self, info: Info, page: ConnectionArgs) -> Connection[GenerationJob]:
        from schema.types.generation_job import JOB_PAGES

        return await JOB_PAGES.connection(info, self.row.id, page)

    async def _latest_job(self, info: Info) -> GenerationJob | None:
        from schema.types.generation_job import GenerationJob

        job = await info.context.loaders.latest_job_by_video.load(self.row.id)
        return None if job is None else GenerationJob(row=job)

    def _media_url(self, info: Info) -> str | None:
        return info.context.media_url(self.row.media_path)

    def _poster_url(self, info: Info) -> str | None:
        return info.context.media_url(self.row.poster_path)

    id: strawberry.ID = global_id(models.Video.id, "Video")
    title: str = column(models.Video.title)
    description: str | None = column(models.Video.description)
    input_type: VideoInputType = column(models.Video.input_type)
    source_url: str | None = column(models.Video.source_url)
    status: VideoStatus = column(models.Video.status)
    progress: int = column(models.Video.progress)
    error_message: str | None = column(models.Video.error_message)
    audio_settings: AudioSettings = computed(models.Video.audio_settings, AudioSettings.from_json)
    target_duration_seconds: int = column(
        models.Video.target_duration_seconds,
        description="How long the narration should last, in seconds (see CreateVideoInput).",
    )
    script: Script | None = computed(models.Video.script, Script.from_json)
    caption_tracks: list[CaptionTrack] = computed(
        models.Video.caption_tracks, CaptionTrack.from_json
    )
    published_to: list[Publication] = computed(models.Video.published_to, Publication.from_json)
    owner: Annotated[User, strawberry.lazy("schema.types.user")] = strawberry.field(
        resolver=_owner,
        metadata=relation(models.Video.user_id, models.User.id, loader="user_by_id"),
    )
    voice_profile: Annotated[VoiceProfile, strawberry.lazy("schema.types.voice_profile")] | None = (
        strawberry.field(
            resolver=_voice_profile,
            metadata=relation(
                models.Video.voice_profile_id, models.VoiceProfile.id, loader="voice_profile_by_id"
            ),
        )
    )
    jobs: Connection[Annotated[GenerationJob, strawberry.lazy("schema.types.generation_job")]] = (
        strawberry.field(
            resolver=_jobs,
            description="Generation runs of this video, newest first.",
            metadata=connection(
                models.Video.id,
                models.GenerationJob.video_id,
                loader="jobs_by_video",
                count_loader="job_count_by_video",
            ),
        )
    )
    latest_job: Annotated[GenerationJob, strawberry.lazy("schema.types.generation_job")] | None = (
        strawberry.field(
            resolver=_latest_job,
            description="The most recently queued generation run, if any.",
            metadata=relation(
                models.Video.id, models.GenerationJob.video_id, loader="latest_job_by_video"
            ),
        )
    )
    media_url: str | None = strawberry.field(
        resolver=_media_url,
        metadata=signed_media(models.Video.media_path),
        description="A short-lived signed URL of the MP4 (H.264 + AAC) that a <video> element can "
        "play and seek in, no Authorization header needed; set once a generation run succeeds. "
        "A caption track's URL goes in a <track> element.",
    )
    poster_url: str | None = strawberry.field(
        resolver=_poster_url,
        metadata=signed_media(models.Video.poster_path),
        description="A short-lived signed URL of a still image (PNG) for the player; set with "
        "mediaUrl.",
    )
    duration_ms: int | None = column(
        models.Video.duration_ms,
        description="Length of the rendered video in milliseconds; set with mediaUrl.",
    )
    created_at: datetime = column(models.Video.created_at)
    updated_at: datetime = column(models.Video.updated_at)
    version: int = column(
        models.Video.version,
        description="Grows by one with every change of the video. `videoUpdated` given the last "
        "version a client saw (`afterVersion`) first sends the status changes it missed.",
    )


def _given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


async def video_connection(
    info: Info,
    owner_id: uuid.UUID,
    page: ConnectionArgs,
    video_filter: VideoFilter | None,
    order_by: VideoOrder | None,
) -> Connection[Video]:
    """An owner's videos as a connection (``Query.videos`` and ``User.videos``)."""
    query_filter = (video_filter or VideoFilter()).to_query()  # BAD_USER_INPUT before the page's
    order = (order_by or VideoOrder()).to_query()
    return await video_pages(query_filter, order).connection(info, owner_id, page)


def video_pages(
    video_filter: VideoFilterQuery, order: VideoOrderQuery
) -> Pages[models.Video, Video]:
    """The videos a filter keeps, in an order: the loaders and the cursors follow from both."""
    return Pages(
        cursors="videos",
        ordering=order.ordering(),
        page_loader=lambda loaders, page: loaders.videos_by_owner(video_filter, order, page),
        count_loader=lambda loaders: loaders.video_count_by_owner(video_filter),
        node=lambda row: Video(row=row),
        by_id=lambda loaders: loaders.video_by_id,  # a job's `video` among these costs nothing
    )
