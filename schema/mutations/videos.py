"""Video mutations (SPEC §4): create, update, delete (soft), restore, publish.

Each checks its input field by field before touching the database, then calls one
`db.queries.videos` function, which filters by the owner, writes, and records the audit event in
the same transaction (committed by `schema.transactions`).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import strawberry

from app import media, validation
from app.errors import BadUserInput
from app.publishing import target_named
from db import models
from db.models import DEFAULT_AUDIO_SETTINGS
from db.queries import video_writes
from schema.context import Info
from schema.relay import from_global_id, to_global_id
from schema.transactions import mutation
from schema.types.enums import VideoInputType
from schema.types.video import Video

T = TypeVar("T")


@strawberry.input(name="AudioSettingsInput")
class AudioSettingsInput:
    speed: float | None = strawberry.UNSET
    pitch: float | None = strawberry.UNSET
    volume: float | None = strawberry.UNSET
    language: str | None = strawberry.UNSET

    def given(self) -> dict[str, Any]:
        return {
            key: value
            for key in ("speed", "pitch", "volume", "language")
            if (value := getattr(self, key)) is not strawberry.UNSET and value is not None
        }


_TARGET_DURATION = (
    "How long the narration should last, in seconds (15 to 600; absent or null: 60). A "
    "page's script is a summary of its article fitted to it at the voice's pace; a "
    "description is narrated in full (a hosted script model, where the studio has one, "
    "fits both)."
)


@strawberry.input(name="CreateVideoInput")
class CreateVideoInput:
    title: str
    description: str | None = strawberry.UNSET
    input_type: VideoInputType
    source_url: str | None = strawberry.UNSET
    voice_profile_id: strawberry.ID | None = strawberry.UNSET
    audio_settings: AudioSettingsInput | None = strawberry.UNSET
    target_duration_seconds: int | None = strawberry.field(
        default=strawberry.UNSET, description=_TARGET_DURATION
    )


@strawberry.input(name="UpdateVideoInput")
class UpdateVideoInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    source_url: str | None = strawberry.UNSET
    voice_profile_id: strawberry.ID | None = strawberry.UNSET
    audio_settings: AudioSettingsInput | None = strawberry.UNSET
    target_duration_seconds: int | None = strawberry.field(
        default=strawberry.UNSET, description=_TARGET_DURATION
    )


@strawberry.input(name="PublishVideoInput")
class PublishVideoInput:
    video_id: strawberry.ID
    target: str = "local"


@strawberry.type(name="VideoPayload")
class VideoPayload:
    video: Video


@strawberry.type(name="DeletePayload")
class DeletePayload:
    deleted_id: strawberry.ID


@strawberry.type
class VideoMutations:
    @mutation("Create a video (DRAFT) from a description or a web page URL.")
    async def create_video(self, info: Info, input: CreateVideoInput) -> VideoPayload:
        viewer = await info.context.require_viewer()
        values: dict[str, Any] = {
            "title": validation.text(input.title, field="title", max_length=validation.TITLE_MAX),
            "input_type": input.input_type,
            "description": _description(_given(input.description)),
            "source_url": _source_url(_given(input.source_url)),
            "voice_profile_id": _voice_profile_id(_given(input.voice_profile_id)),
            "audio_settings": validation.audio_settings(
                DEFAULT_AUDIO_SETTINGS, _audio(input.audio_settings), field="audioSettings"
            ),
            "target_duration_seconds": validation.target_duration(
                _given(input.target_duration_seconds), field="targetDurationSeconds"
            ),
        }
        _check_input_matches_type(values)
        video = await info.context.gate.run(
            video_writes.create_video, viewer.user_id, values, request_id=info.context.request_id
        )
        return VideoPayload(video=Video(row=video))

    @mutation("Change a video; generation inputs are locked while a job is queued or running.")
    async def update_video(self, info: Info, input: UpdateVideoInput) -> VideoPayload:
        viewer = await info.context.require_viewer()
        video_id = _video_id(input.id, field="id")
        current = await info.context.gate.run(
            video_writes.get_video_for_update, viewer.user_id, video_id
        )
        values: dict[str, Any] = {}
        if input.title is not strawberry.UNSET:
            if input.title is None:
                raise BadUserInput("`title` cannot be null.", field="title")
            values["title"] = validation.text(
                input.title, field="title", max_length=validation.TITLE_MAX
            )
        if input.description is not strawberry.UNSET:
            values["description"] = _description(input.description)
        if input.source_url is not strawberry.UNSET:
            values["source_url"] = _source_url(input.source_url)
        if input.voice_profile_id is not strawberry.UNSET:
            values["voice_profile_id"] = _voice_profile_id(input.voice_profile_id)
        if input.audio_settings is not strawberry.UNSET:
            values["audio_settings"] = validation.audio_settings(
                current.audio_settings, _audio(input.audio_settings), field="audioSettings"
            )
        if input.target_duration_seconds is not strawberry.UNSET:
            values["target_duration_seconds"] = validation.target_duration(
                input.target_duration_seconds, field="targetDurationSeconds"
            )
        _check_input_matches_type(
            {"input_type": current.input_type}
            | {key: getattr(current, key) for key in ("description", "source_url")}
            | values
        )
        video = await info.context.gate.run(
            video_writes.update_video,
            viewer.user_id,
            video_id,
            values,
            request_id=info.context.request_id,
        )
        return VideoPayload(video=Video(row=video))

    @mutation("Delete a video (it can be restored); cancels its queued or running job.")
    async def delete_video(self, info: Info, id: strawberry.ID) -> DeletePayload:
        viewer = await info.context.require_viewer()
        video = await info.context.gate.run(
            video_writes.delete_video,
            viewer.user_id,
            _video_id(id, field="id"),
            request_id=info.context.request_id,
        )
        return DeletePayload(deleted_id=to_global_id("Video", video.id))

    @mutation("Bring back a deleted video.")
    async def restore_video(self, info: Info, id: strawberry.ID) -> VideoPayload:
        viewer = await info.context.require_viewer()
        video = await info.context.gate.run(
            video_writes.undelete_video,
            viewer.user_id,
            _video_id(id, field="id"),
            request_id=info.context.request_id,
        )
        return VideoPayload(video=Video(row=video))

    @mutation("Publish a READY video to a target (default: this studio).")
    async def publish_video(self, info: Info, input: PublishVideoInput) -> VideoPayload:
        viewer = await info.context.require_viewer()
        target = target_named(input.target)
        video_id = _video_id(input.video_id, field="videoId")
        video = await info.context.gate.run(
            video_writes.get_video_for_update, viewer.user_id, video_id
        )
        video_writes.check_publishable(video)  # before anything leaves for the target
        assert video.media_path is not None  # checked
        media_file = media.resolve(info.context.settings, video.media_path)
        publication = await target.publish(video_id, media_file)
        video = await info.context.gate.run(
            video_writes.add_publication,
            viewer.user_id,
            video_id,
            publication.to_json(),
            request_id=info.context.request_id,
        )
        return VideoPayload(video=Video(row=video))


def _given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


def _audio(settings: AudioSettingsInput | None) -> dict[str, Any]:
    given = _given(settings)
    return {} if given is None else given.given()


def _video_id(global_id: str, *, field: str) -> uuid.UUID:
    return from_global_id(global_id, expected="Video", field=field)[1]


def _voice_profile_id(global_id: str | None) -> uuid.UUID | None:
    if global_id is None:
        return None
    return from_global_id(global_id, expected="VoiceProfile", field="voiceProfileId")[1]


def _description(value: str | None) -> str | None:
    return validation.optional_text(
        value, field="description", max_length=validation.DESCRIPTION_MAX
    )


def _source_url(value: str | None) -> str | None:
    return None if value is None else validation.web_url(value, field="sourceUrl")


def _check_input_matches_type(values: dict[str, Any]) -> None:
    """URL videos need a sourceUrl; description videos need a description."""
    if values["input_type"] is models.VideoInputType.URL and not values.get("source_url"):
        raise BadUserInput("A video made from a URL needs a `sourceUrl`.", field="sourceUrl")
    if values["input_type"] is models.VideoInputType.DESCRIPTION and not values.get("description"):
        raise BadUserInput(
            "A video made from a description needs a `description`.", field="description"
        )
