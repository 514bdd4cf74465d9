"""``type Mutation`` (SPEC §4): one class per area, merged here."""

from __future__ import annotations

import strawberry

from schema.mutations.videos import VideoMutations


@strawberry.type
class Mutation(VideoMutations):
    pass
