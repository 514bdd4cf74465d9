"""``type Query`` (SPEC §4). Every read is the viewer's: another user's object is NOT_FOUND."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import strawberry

from app.errors import BadUserInput, NotFound
from app.pipeline import narrator
from schema.context import Info
from schema.paging import paged
from schema.relay import Connection, ConnectionArgs, Node, from_global_id
from schema.types.audit_event import AuditEvent
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video, VideoFilter, VideoOrder, video_connection
from schema.types.voice_profile import (
    VOICE_PROFILE_PAGES,
    VoiceCatalog,
    VoiceEngine,
    VoiceProfile,
)

MAX_NODES = 100

# Global id type name -> the by-id loader (it filters by the viewer) and the GraphQL type.
_NODE_TYPES: dict[str, tuple[str, Callable[[Any], Node]]] = {
    "User": ("user_by_id", lambda row: User(row=row)),
    "Video": ("video_by_id", lambda row: Video(row=row)),
    "VoiceProfile": ("voice_profile_by_id", lambda row: VoiceProfile(row=row)),
    "GenerationJob": ("job_by_id", lambda row: GenerationJob(row=row)),
    "AuditEvent": ("audit_event_by_id", lambda row: AuditEvent(row=row)),
}


async def load_node(info: Info, global_id: str, *, expected: str | None = None) -> Node:
    """The viewer's object with this global id; NOT_FOUND when missing or someone else's."""
    await info.context.require_viewer()
    type_name, row_id = from_global_id(global_id, expected=expected)
    known = _NODE_TYPES.get(type_name)
    row = None if known is None else await getattr(info.context.loaders, known[0]).load(row_id)
    if known is None or row is None:
        raise NotFound(f"No {expected or 'object'} with id {global_id!r}.")
    return known[1](row)


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await load_node(info, id)

    @strawberry.field(description=f"Objects by global id, in order (at most {MAX_NODES}).")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        await info.context.require_viewer()
        if len(ids) > MAX_NODES:
            raise BadUserInput(f"At most {MAX_NODES} ids at once.", field="ids")
        # Awaitables, not values: each id fails (NOT_FOUND at its index) or loads on its own,
        # and the loaders still batch them into one statement per type.
        return [load_node(info, global_id) for global_id in ids]  # type: ignore[misc]

    @strawberry.field(description="The signed-in user; null when not signed in.")
    async def viewer(self, info: Info) -> User | None:
        row = await info.context.viewer_user()
        return None if row is None else User(row=row)

    @strawberry.field
    async def video(self, info: Info, id: strawberry.ID) -> Video | None:
        node = await load_node(info, id, expected="Video")
        assert isinstance(node, Video)
        return node

    @strawberry.field(description="The viewer's videos.")
    @paged
    async def videos(
        self,
        info: Info,
        page: ConnectionArgs,
        filter: VideoFilter | None = strawberry.UNSET,
        order_by: VideoOrder | None = strawberry.UNSET,
    ) -> Connection[Video]:
        viewer = await info.context.require_viewer()
        return await video_connection(info, viewer.user_id, page, filter, order_by)

    @strawberry.field(description="The viewer's voice profiles, newest first.")
    @paged
    async def voice_profiles(self, info: Info, page: ConnectionArgs) -> Connection[VoiceProfile]:
        viewer = await info.context.require_viewer()
        return await VOICE_PROFILE_PAGES.connection(info, viewer.user_id, page)

    @strawberry.field(
        description="The voices and variants narration can be spoken in: the values "
        "`engineSettings.voice` and `engineSettings.variant` accept."
    )
    async def voice_catalog(self, info: Info) -> VoiceCatalog:
        await info.context.require_viewer()
        engines = await asyncio.to_thread(narrator.catalog)  # eSpeak's listed once per process
        return VoiceCatalog(
            voices=sorted({voice for engine in engines for voice in engine.voices}),
            variants=[variant for engine in engines for variant in engine.variants],
            engines=[
                VoiceEngine(
                    name=engine.name,
                    voices=list(engine.voices),
                    variants=list(engine.variants),
                    languages=list(engine.languages),
                    pitch=engine.pitch,
                    licence=engine.licence,
                )
                for engine in engines
            ],
        )

    @strawberry.field
    async def generation_job(self, info: Info, id: strawberry.ID) -> GenerationJob | None:
        node = await load_node(info, id, expected="GenerationJob")
        assert isinstance(node, GenerationJob)
        return node
