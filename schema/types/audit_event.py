from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from schema.context import Info
from schema.mapping import column, computed, global_id
from schema.relay import (
    Connection,
    ConnectionArgs,
    CursorCodec,
    Node,
    build_connection,
    to_global_id,
)


def _object_id(row: models.AuditEvent) -> strawberry.ID | None:
    if row.object_id is None:
        return None
    return to_global_id(row.object_type, row.object_id)


@strawberry.type(name="AuditEvent", description="One change the viewer made, as recorded.")
class AuditEvent(Node):
    row: strawberry.Private[models.AuditEvent]

    def _object(self) -> strawberry.ID | None:
        return _object_id(self.row)

    id: strawberry.ID = global_id(models.AuditEvent.id, "AuditEvent")
    action: str = column(
        models.AuditEvent.action, description="What was done, e.g. `video.update`."
    )
    object_type: str = column(models.AuditEvent.object_type)
    object_id: strawberry.ID | None = strawberry.field(
        resolver=_object, description="The global id of the object changed."
    )
    request_id: str | None = column(
        models.AuditEvent.request_id, description="The X-Request-ID of the request."
    )
    diff: JSON = computed(
        models.AuditEvent.diff, dict, description="What changed: {field: [before, after]}."
    )
    created_at: datetime = column(models.AuditEvent.created_at)


async def audit_event_connection(
    info: Info, actor_id: uuid.UUID, args: ConnectionArgs
) -> Connection[AuditEvent]:
    loaders = info.context.loaders
    codec = CursorCodec(
        secret=info.context.cursor_key, ordering="audit:CREATED_AT:DESC", value_type=datetime
    )
    slice_ = await loaders.audit_events_by_actor(args.page_request(codec)).load(actor_id)
    count_loader = loaders.audit_event_count_by_actor()
    return build_connection(
        slice_,
        codec=codec,
        order_value=lambda row: row.created_at,
        row_id=lambda row: row.id,
        node=lambda row: AuditEvent(row=row),
        count=lambda: count_loader.load(actor_id),
    )
