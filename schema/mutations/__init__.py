"""``type Mutation`` (SPEC §4): one class per area, merged here."""

from __future__ import annotations

import strawberry

from schema.mutations.auth import AuthMutations
from schema.mutations.generation import GenerationMutations
from schema.mutations.videos import VideoMutations
from schema.mutations.voice_profiles import VoiceProfileMutations


@strawberry.type
class Mutation(AuthMutations, VideoMutations, GenerationMutations, VoiceProfileMutations):
    pass
