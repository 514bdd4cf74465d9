from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from schema.context import Info
from schema.relay import Connection, ConnectionArgs, Node, to_global_id
from schema.types.video import Video, VideoFilter, VideoOrder, video_connection
from schema.types.voice_profile import VoiceProfile, voice_profile_connection


@strawberry.type(name="User")
class User(Node):
    row: strawberry.Private[models.User]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return to_global_id("User", self.row.id)

    @strawberry.field
    def email(self) -> str:
        return self.row.email

    @strawberry.field
    def display_name(self) -> str | None:
        return self.row.display_name

    @strawberry.field
    def avatar_url(self) -> str | None:
        return self.row.avatar_url

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field
    async def videos(
        self,
        info: Info,
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        last: int | None = strawberry.UNSET,
        before: str | None = strawberry.UNSET,
        filter: VideoFilter | None = strawberry.UNSET,
        order_by: VideoOrder | None = strawberry.UNSET,
    ) -> Connection[Video]:
        args = ConnectionArgs(first, after, last, before)
        return await video_connection(info, self.row.id, args, filter, order_by)

    @strawberry.field
    async def voice_profiles(
        self,
        info: Info,
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        last: int | None = strawberry.UNSET,
        before: str | None = strawberry.UNSET,
    ) -> Connection[VoiceProfile]:
        args = ConnectionArgs(first, after, last, before)
        return await voice_profile_connection(info, self.row.id, args)
