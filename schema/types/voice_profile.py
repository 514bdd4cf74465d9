from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from app.pipeline import preview
from db import models
from db.queries.voice_profiles import VOICE_PROFILE_ORDERING
from schema.context import Info
from schema.mapping import column, computed, global_id, relation, signed_media
from schema.paging import Pages
from schema.relay import Node

if TYPE_CHECKING:
    from schema.types.user import User


@strawberry.type(description="One speech engine and the voices it has.")
class VoiceEngine:
    name: str = strawberry.field(description="`espeak` (eSpeak NG) or `piper` (neural voices).")
    voices: list[str] = strawberry.field(description="Its voice names, as `engineSettings.voice`.")
    variants: list[str] = strawberry.field(description="Its variants (eSpeak NG's alone).")
    languages: list[str] = strawberry.field(description="The languages it speaks.")
    pitch: bool = strawberry.field(description="Whether `engineSettings.pitch` changes it.")
    licence: str = strawberry.field(description="The licence of the engine and its voices.")


@strawberry.type(description="What the speech engines can speak, as `engineSettings` names it.")
class VoiceCatalog:
    voices: list[str] = strawberry.field(
        description="Voice names of every engine (`en`, `en-us`, `de`, `en_US-joe-medium` …)."
    )
    variants: list[str] = strawberry.field(description="Variant names (`f3`, `m2`, `klatt` …).")
    engines: list[VoiceEngine] = strawberry.field(
        description="The engines installed, eSpeak NG first; a profile naming a voice of one "
        "is spoken by it."
    )


@strawberry.type(
    name="VoiceEngineSettings",
    description="How eSpeak NG speaks a voice profile; a null field is the engine's default.",
)
class VoiceEngineSettings:
    voice: str | None = strawberry.field(
        description="The voice: eSpeak NG's (`en-us`, `de`) or a neural one "
        "(`en_US-joe-medium`, see `voiceCatalog`); null: the profile's language."
    )
    variant: str | None = strawberry.field(description="A voice variant (`f3`, `m2`, `klatt`).")
    rate: int | None = strawberry.field(description="Words per minute, 80-450 (default 175).")
    pitch: int | None = strawberry.field(description="Base pitch, 0-100 (default 50).")
    volume: int | None = strawberry.field(description="Amplitude, 0-200 (default 100).")

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> VoiceEngineSettings:
        """Read tolerantly, as synthesis reads it: a value of the wrong kind is the default."""
        stored = data or {}
        return cls(
            voice=_text(stored.get("voice")),
            variant=_text(stored.get("variant")),
            rate=_whole(stored.get("rate")),
            pitch=_whole(stored.get("pitch")),
            volume=_whole(stored.get("volume")),
        )


@strawberry.type(name="VoiceProfile")
class VoiceProfile(Node):
    row: strawberry.Private[models.VoiceProfile]

    async def _owner(self, info: Info) -> User:
        from schema.types.user import User

        user = await info.context.loaders.user_by_id.load(self.row.user_id)
        if user is None:  # a visible profile always has the viewer as owner
            raise LookupError(f"owner of voice profile {self.row.id} not loadable")
        return User(row=user)

    def _sample_url(self, info: Info) -> str | None:
        return info.context.media_url(self.row.sample_path)

    def _preview_url(self, info: Info) -> str | None:
        # The file is made when the profile is created or changed, or else on first fetch.
        return info.context.media_url(preview.preview_path(self.row))

    id: strawberry.ID = global_id(models.VoiceProfile.id, "VoiceProfile")
    name: str = column(models.VoiceProfile.name)
    description: str | None = column(models.VoiceProfile.description)
    language: str | None = column(models.VoiceProfile.language)
    engine_settings: VoiceEngineSettings = computed(
        models.VoiceProfile.engine_settings,
        VoiceEngineSettings.from_json,
        description="How the voice is synthesized (the narration and the preview).",
    )
    sample_url: str | None = strawberry.field(
        resolver=_sample_url,
        metadata=signed_media(models.VoiceProfile.sample_path),
        description="A short-lived signed URL of the uploaded voice sample, served by the app "
        "(an `<audio src>` can play it; no Authorization header needed).",
    )
    preview_url: str | None = strawberry.field(
        resolver=_preview_url, description="A URL of a short sample synthesized in this voice."
    )
    owner: Annotated[User, strawberry.lazy("schema.types.user")] = strawberry.field(
        resolver=_owner,
        metadata=relation(models.VoiceProfile.user_id, models.User.id, loader="user_by_id"),
    )
    created_at: datetime = column(models.VoiceProfile.created_at)
    updated_at: datetime = column(models.VoiceProfile.updated_at)


#: An owner's voice profiles (``Query.voiceProfiles``, ``User.voiceProfiles``), newest first.
VOICE_PROFILE_PAGES = Pages[models.VoiceProfile, VoiceProfile](
    cursors="voice_profiles",
    ordering=VOICE_PROFILE_ORDERING,
    page_loader=lambda loaders, page: loaders.voice_profiles_by_owner(page),
    count_loader=lambda loaders: loaders.voice_profile_count_by_owner(),
    node=lambda row: VoiceProfile(row=row),
    by_id=lambda loaders: loaders.voice_profile_by_id,
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    whole = round(value)
    return whole if abs(whole) < 2**31 else None  # GraphQL's Int is 32-bit
