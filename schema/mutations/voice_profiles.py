"""Voice profile mutations (SPEC §4): create (with an optional uploaded sample), update, delete.

A sample arrives as an ``Upload`` through the GraphQL multipart request spec. It is read with a
hard cap and checked to be audio (its container's headers, `app.audio`, then a short decode,
`app.audio_decode`) before anything is written; then the row is inserted, the file
stored under a name the server chooses, and the row pointed at it. If the mutation's transaction
rolls back after the file was stored, the rollback hook removes the file: a failed
``createVoiceProfile`` leaves neither a row nor a file behind.

Creating or changing a profile also synthesizes its preview ("Hello, this is <name>.", see
`app.pipeline.preview`), removed the same way if the transaction rolls back.

``engineSettings`` on update changes only the keys it gives: a key left out keeps its value, a
key given as null is cleared (the engine's default again). ``engineSettings: null`` is refused
rather than guessed at (keep everything, or clear everything?).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from app import audio, audio_decode, media, validation
from app.errors import BadUserInput
from app.pipeline import narrator, preview, speech
from db import models
from db.queries import voice_profiles
from schema.context import Info
from schema.mutations.videos import DeletePayload
from schema.relay import from_global_id, to_global_id
from schema.transactions import mutation
from schema.types.voice_profile import VoiceProfile

T = TypeVar("T")
logger = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024


@strawberry.input(
    name="VoiceEngineSettingsInput",
    description="How eSpeak NG speaks the voice. On update, a field left out keeps its value "
    "and a field set to null is cleared (the engine's default).",
)
class VoiceEngineSettingsInput:
    voice: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="An eSpeak NG voice, such as `en`, `en-us`, `de` or `pt-br`; without one, "
        "the profile's language chooses.",
    )
    variant: str | None = strawberry.field(
        default=strawberry.UNSET, description="An eSpeak NG variant, such as `f3`, `m2`, `klatt`."
    )
    rate: int | None = strawberry.field(
        default=strawberry.UNSET, description="Words per minute, 80-450 (default 175)."
    )
    pitch: int | None = strawberry.field(
        default=strawberry.UNSET, description="Base pitch, 0-100 (default 50)."
    )
    volume: int | None = strawberry.field(
        default=strawberry.UNSET, description="Amplitude, 0-200 (default 100)."
    )

    def given(self) -> dict[str, Any]:
        """The fields the client sent, nulls included."""
        return {
            key: value
            for key in ("voice", "variant", "rate", "pitch", "volume")
            if (value := getattr(self, key)) is not strawberry.UNSET
        }


@strawberry.input(name="CreateVoiceProfileInput")
class CreateVoiceProfileInput:
    name: str
    description: str | None = strawberry.UNSET
    language: str | None = strawberry.UNSET
    sample: Upload | None = strawberry.field(
        default=strawberry.UNSET,
        description="A short recording of the voice (WAV, MP3, Ogg Vorbis/Opus or FLAC), sent "
        "as a file part of a multipart request.",
    )
    engine_settings: VoiceEngineSettingsInput | None = strawberry.UNSET


@strawberry.input(name="UpdateVoiceProfileInput")
class UpdateVoiceProfileInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    language: str | None = strawberry.UNSET
    engine_settings: VoiceEngineSettingsInput | None = strawberry.UNSET


@strawberry.type(name="VoiceProfilePayload")
class VoiceProfilePayload:
    voice_profile: VoiceProfile


@strawberry.type
class VoiceProfileMutations:
    @mutation("Create a voice profile, optionally with a recorded sample of the voice.")
    async def create_voice_profile(
        self, info: Info, input: CreateVoiceProfileInput
    ) -> VoiceProfilePayload:
        upload: object = input.sample  # `Upload` is typed as bytes; Starlette gives a file
        try:
            profile = await _create(info, input)
        finally:
            # The upload's temporary file goes as soon as the mutation is done with it, whatever
            # the outcome (validation can refuse the input before the file is read).
            if isinstance(upload, UploadFile):
                await upload.close()
        await _make_preview(info, profile)
        return VoiceProfilePayload(voice_profile=VoiceProfile(row=profile))

    @mutation("Change a voice profile's name, description, language or engine settings.")
    async def update_voice_profile(
        self, info: Info, input: UpdateVoiceProfileInput
    ) -> VoiceProfilePayload:
        viewer = await info.context.require_viewer()
        profile_id = _profile_id(input.id)
        values: dict[str, Any] = {}
        if input.name is not strawberry.UNSET:
            if input.name is None:
                raise BadUserInput("`name` cannot be null.", field="name")
            values["name"] = _name(input.name)
        if input.description is not strawberry.UNSET:
            values["description"] = _description(input.description)
        if input.language is not strawberry.UNSET:
            values["language"] = _language(input.language)
        engine_settings: dict[str, Any] = {}
        if input.engine_settings is not strawberry.UNSET:
            if input.engine_settings is None:
                raise BadUserInput(
                    "`engineSettings` cannot be null: set a field of it to null to clear that "
                    "field.",
                    field="engineSettings",
                )
            engine_settings = await _engine_settings(input.engine_settings)
        profile = await info.context.gate.run(
            voice_profiles.update_voice_profile,
            viewer.user_id,
            profile_id,
            values,
            engine_settings=engine_settings,
            request_id=info.context.request_id,
        )
        await _make_preview(info, profile)
        return VoiceProfilePayload(voice_profile=VoiceProfile(row=profile))

    @mutation("Delete a voice profile (soft: it disappears from every query and link).")
    async def delete_voice_profile(self, info: Info, id: strawberry.ID) -> DeletePayload:
        viewer = await info.context.require_viewer()
        profile = await info.context.gate.run(
            voice_profiles.delete_voice_profile,
            viewer.user_id,
            _profile_id(id),
            request_id=info.context.request_id,
        )
        return DeletePayload(deleted_id=to_global_id("VoiceProfile", profile.id))


async def _create(info: Info, input: CreateVoiceProfileInput) -> models.VoiceProfile:
    context = info.context
    viewer = await context.require_viewer()
    values: dict[str, Any] = {
        "name": _name(input.name),
        "description": _description(_given(input.description)),
        "language": _language(_given(input.language)),
    }
    given_settings = _given(input.engine_settings)
    if given_settings is not None:
        checked = await _engine_settings(given_settings)
        values["engine_settings"] = {k: v for k, v in checked.items() if v is not None}
    sample = await _read_sample(_given(input.sample), context.settings.max_upload_bytes)
    profile = await context.gate.run(
        voice_profiles.create_voice_profile, viewer.user_id, values, request_id=context.request_id
    )
    if sample is None:
        return profile
    settings = context.settings
    path = media.voice_sample_path(profile.id, sample.kind.extension)

    async def remove_sample() -> None:
        await asyncio.to_thread(media.delete_file, settings, path)

    # Registered before writing: a write that fails halfway is cleaned up as well.
    context.on_rollback(remove_sample)
    await asyncio.to_thread(media.write_file, settings, path, sample.data)
    return await context.gate.run(
        voice_profiles.set_sample_path,
        viewer.user_id,
        profile.id,
        path,
        request_id=context.request_id,
    )


async def _make_preview(info: Info, profile: models.VoiceProfile) -> None:
    """Synthesize the profile's preview now, so that ``previewUrl`` plays at once. A failure
    (of synthesis, or of storage that is full) does not fail the mutation: the media route
    makes the preview on first fetch instead."""
    settings = info.context.settings
    try:
        path = await preview.make_preview(settings, profile)
    except (speech.SpeechError, media.StorageUnavailable) as exc:
        logger.warning("voice profile %s: no preview (%s)", profile.id, exc)
        return
    if path is not None:

        async def remove_preview() -> None:
            await asyncio.to_thread(media.delete_file, settings, path)

        info.context.on_rollback(remove_preview)


@dataclass(frozen=True)
class _Sample:
    data: bytes
    kind: audio.AudioKind


async def _read_sample(upload: object, limit: int) -> _Sample | None:
    """The uploaded bytes, read up to the limit and checked to be audio; the client's file name
    and content type are ignored."""
    if upload is None:
        return None
    if not isinstance(upload, UploadFile):
        # `Upload` variables are only filled from file parts; a JSON value is not a file.
        raise BadUserInput(
            "`sample` must be a file sent as a multipart request part.", field="sample"
        )
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:  # stop reading: the rest is never looked at
            raise BadUserInput(f"`sample` is limited to {limit} bytes.", field="sample")
        chunks.append(chunk)
    data = b"".join(chunks)
    kind = audio.detect(data)
    await audio_decode.check_decodes(data, kind)  # a header is not audio yet
    return _Sample(data=data, kind=kind)


def _given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


def _profile_id(global_id: str) -> uuid.UUID:
    return from_global_id(global_id, expected="VoiceProfile", field="id")[1]


def _name(value: str) -> str:
    return validation.text(value, field="name", max_length=validation.NAME_MAX)


def _description(value: str | None) -> str | None:
    return validation.optional_text(
        value, field="description", max_length=validation.DESCRIPTION_MAX
    )


async def _engine_settings(settings: VoiceEngineSettingsInput) -> dict[str, Any]:
    """The given settings, checked (nulls kept: on update they clear their key)."""
    given = settings.given()
    if given.get("voice") is None and given.get("variant") is None:
        return validation.engine_settings(given, field="engineSettings")
    # Listing the voices loads eSpeak the first time: off the event loop.
    catalog = await asyncio.to_thread(speech.catalog)
    voices = await asyncio.to_thread(narrator.voice_names)
    return validation.engine_settings(
        given, field="engineSettings", voices=voices, variants=catalog.variants
    )


def _language(value: str | None) -> str | None:
    return None if value is None else validation.language(value, field="language")
