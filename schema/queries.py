"""``type Query`` (SPEC §4). Every read is the viewer's: another user's object is NOT_FOUND."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from app.errors import BadUserInput, NotFound
from schema.context import Info
from schema.relay import Connection, ConnectionArgs, Node, from_global_id
from schema.types.audit_event import AuditEvent
from schema.types.generation_job import GenerationJob
from schema.types.user import User
from schema.types.video import Video, VideoFilter, VideoOrder, video_connection
from schema.types.voice_profile import VoiceProfile, voice_profile_connection

MAX_NODES = 100

# Global id type name -> how to load and wrap it. Loaders filter by the viewer.
_NODE_TYPES: dict[str, Callable[[Info, uuid.UUID], Awaitable[Node | None]]] = {}


def _node_type(name: str) -> Callable[[Callable[[Info, uuid.UUID], Awaitable[Node | None]]], Any]:
    def register(load: Callable[[Info, uuid.UUID], Awaitable[Node | None]]) -> Any:
        _NODE_TYPES[name] = load
        return load

    return register


@_node_type("User")
async def _load_user(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.user_by_id.load(row_id)
    return None if row is None else User(row=row)


@_node_type("Video")
async def _load_video(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.video_by_id.load(row_id)
    return None if row is None else Video(row=row)


@_node_type("VoiceProfile")
async def _load_voice_profile(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.voice_profile_by_id.load(row_id)
    return None if row is None else VoiceProfile(row=row)


@_node_type("GenerationJob")
async def _load_job(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.job_by_id.load(row_id)
    return None if row is None else GenerationJob(row=row)


@_node_type("AuditEvent")
async def _load_audit_event(info: Info, row_id: uuid.UUID) -> Node | None:
    row = await info.context.loaders.audit_event_by_id.load(row_id)
    return None if row is None else AuditEvent(row=row)


async def load_node(info: Info, global_id: str, *, expected: str | None = None) -> Node:
    """The viewer's object with this global id; NOT_FOUND when missing or someone else's."""
    await info.context.require_viewer()
    type_name, row_id = from_global_id(global_id, expected=expected)
    load = _NODE_TYPES.get(type_name)
    node = None if load is None else await load(info, row_id)
    if node is None:
        raise NotFound(f"No {expected or 'object'} with id {global_id!r}.")
    return node


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
        viewer = await info.context.require_viewer()
        args = ConnectionArgs(first, after, last, before)
        return await video_connection(info, viewer.user_id, args, filter, order_by)

    @strawberry.field(description="The viewer's voice profiles, newest first.")
    async def voice_profiles(
        self,
        info: Info,
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        last: int | None = strawberry.UNSET,
        before: str | None = strawberry.UNSET,
    ) -> Connection[VoiceProfile]:
        viewer = await info.context.require_viewer()
        args = ConnectionArgs(first, after, last, before)
        return await voice_profile_connection(info, viewer.user_id, args)

    @strawberry.field
    async def generation_job(self, info: Info, id: strawberry.ID) -> GenerationJob | None:
        node = await load_node(info, id, expected="GenerationJob")
        assert isinstance(node, GenerationJob)
        return node
