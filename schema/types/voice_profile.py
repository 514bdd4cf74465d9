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

if TYPE_CHECKING:
    from schema.types.user import User


@strawberry.type(name="VoiceProfile")
class VoiceProfile(Node):
    row: strawberry.Private[models.VoiceProfile]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return to_global_id("VoiceProfile", self.row.id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def description(self) -> str | None:
        return self.row.description

    @strawberry.field
    def language(self) -> str | None:
        return self.row.language

    @strawberry.field(description="A URL of the uploaded voice sample, served by the app.")
    def sample_url(self) -> str | None:
        return None  # uploads arrive with the voice-profile mutations

    @strawberry.field(description="A URL of a short sample synthesized in this voice.")
    def preview_url(self) -> str | None:
        return None  # previews arrive with speech synthesis

    @strawberry.field
    async def owner(self, info: Info) -> Annotated[User, strawberry.lazy("schema.types.user")]:
        from schema.types.user import User

        user = await info.context.loaders.user_by_id.load(self.row.user_id)
        if user is None:
            raise LookupError(
                f"owner {self.row.user_id} of voice profile {self.row.id} not loadable"
            )
        return User(row=user)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at


async def voice_profile_connection(
    info: Info, owner_id: uuid.UUID, args: ConnectionArgs
) -> Connection[VoiceProfile]:
    loaders = info.context.loaders
    codec = CursorCodec(
        secret=info.context.cursor_key,
        ordering="voice_profiles:CREATED_AT:DESC",
        value_type=datetime,
    )
    slice_ = await loaders.voice_profiles_by_owner(args.page_request(codec)).load(owner_id)
    count_loader = loaders.voice_profile_count_by_owner()
    return build_connection(
        slice_,
        codec=codec,
        order_value=lambda row: row.created_at,
        row_id=lambda row: row.id,
        node=lambda row: VoiceProfile(row=row),
        count=lambda: count_loader.load(owner_id),
    )
