"""A voice profile's preview: "Hello, this is <name>." spoken in that voice.

The preview's file name is derived from what it sounds like — a digest of the text and the eSpeak
parameters the profile maps to (`app.pipeline.speech.voice_for`) — so the database needs no
column for it, a change that alters the sound (name, language, engine settings) names a new
file, and one that does not (the description) keeps the old one::

    voice-previews/<profile id>/<digest>.wav

It is made when the profile is created or changed (`make_preview`, from the mutation), and
again on demand by the media route if the file is missing (a profile from before previews, or a
synthesis that failed at the time). Only the route, which sees the committed profile, removes
previews that no longer match (`prune`); a mutation cannot, since its transaction may still roll
back to the profile the old preview belongs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict
from pathlib import PurePosixPath

from app import media
from app.pipeline import narrator, speech
from app.pipeline.run_media import run_blocking
from app.settings import Settings
from db.models import VoiceProfile

logger = logging.getLogger(__name__)

PREVIEWS = "voice-previews"
_VERSION = 1  # bump to make every preview again (a new text, say)


def preview_text(profile: VoiceProfile) -> str:
    return f"Hello, this is {profile.name}."


def preview_voice(profile: VoiceProfile) -> speech.Voice:
    return narrator.voice_for(
        engine_settings=profile.engine_settings, profile_language=profile.language
    )


def preview_path(profile: VoiceProfile) -> str:
    """Where the profile's current preview is (or will be), relative to the media folder."""
    recipe = {
        "version": _VERSION,
        "text": preview_text(profile),
        "voice": asdict(preview_voice(profile)),
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:32]
    return f"{PREVIEWS}/{profile.id}/{digest}.wav"


def profile_of(path: str) -> uuid.UUID | None:
    """The profile id of a well-formed preview path, else ``None``."""
    parts = PurePosixPath(path).parts
    if len(parts) != 3 or parts[0] != PREVIEWS or not parts[2].endswith(".wav"):
        return None
    try:
        return uuid.UUID(parts[1])
    except ValueError:
        return None


async def make_preview(settings: Settings, profile: VoiceProfile) -> str | None:
    """Synthesize and store the profile's preview unless it exists; the path of a file this
    call wrote (``None``: it was there already). Raises `speech.SpeechError`."""
    path = preview_path(profile)
    if await run_blocking(_exists, settings, path):
        return None
    voice = preview_voice(profile)
    said = await narrator.synthesize(preview_text(profile), voice)
    await run_blocking(media.write_file, settings, path, speech.wav_bytes(said))
    return path


async def prune(settings: Settings, profile: VoiceProfile) -> None:
    """Remove the profile's previews other than the current one."""
    await run_blocking(_prune, settings, preview_path(profile))


def _exists(settings: Settings, path: str) -> bool:
    return media.resolve(settings, path).is_file()


def _prune(settings: Settings, current: str) -> None:
    folder = media.resolve(settings, current).parent
    if not folder.is_dir():
        return
    for file in folder.iterdir():
        if file.name != PurePosixPath(current).name and file.suffix == ".wav":
            file.unlink(missing_ok=True)
