from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from schema.context import Info
from schema.mapping import column, connection, global_id
from schema.paging import paged
from schema.relay import Connection, ConnectionArgs, Node
from schema.types.audit_event import AUDIT_EVENT_PAGES, AuditEvent
from schema.types.video import Video, VideoFilter, VideoOrder, video_connection
from schema.types.voice_profile import VOICE_PROFILE_PAGES, VoiceProfile


@strawberry.type(name="User")
class User(Node):
    row: strawberry.Private[models.User]

    id: strawberry.ID = global_id(models.User.id, "User")
    email: str = column(models.User.email)
    display_name: str | None = column(models.User.display_name)
    avatar_url: str | None = column(models.User.avatar_url)
    created_at: datetime = column(models.User.created_at)
    updated_at: datetime = column(models.User.updated_at)

    @strawberry.field(
        metadata=connection(
            models.User.id,
            models.Video.user_id,
            loader="videos_by_owner",
            count_loader="video_count_by_owner",
        )
    )
    @paged
    async def videos(
        self,
        info: Info,
        page: ConnectionArgs,
        filter: VideoFilter | None = strawberry.UNSET,
        order_by: VideoOrder | None = strawberry.UNSET,
    ) -> Connection[Video]:
        return await video_connection(info, self.row.id, page, filter, order_by)

    @strawberry.field(
        metadata=connection(
            models.User.id,
            models.VoiceProfile.user_id,
            loader="voice_profiles_by_owner",
            count_loader="voice_profile_count_by_owner",
        )
    )
    @paged
    async def voice_profiles(self, info: Info, page: ConnectionArgs) -> Connection[VoiceProfile]:
        return await VOICE_PROFILE_PAGES.connection(info, self.row.id, page)

    @strawberry.field(
        description="The changes this user made, newest first (the audit trail).",
        metadata=connection(
            models.User.id,
            models.AuditEvent.actor_id,
            loader="audit_events_by_actor",
            count_loader="audit_event_count_by_actor",
        ),
    )
    @paged
    async def audit_events(self, info: Info, page: ConnectionArgs) -> Connection[AuditEvent]:
        return await AUDIT_EVENT_PAGES.connection(info, self.row.id, page)
