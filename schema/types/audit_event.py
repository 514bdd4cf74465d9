from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from db.queries.audit import AUDIT_ORDERING
from schema.mapping import column, computed, global_id
from schema.paging import Pages
from schema.relay import Node, to_global_id


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


#: An actor's audit trail (``User.auditEvents``), newest first.
AUDIT_EVENT_PAGES = Pages[models.AuditEvent, AuditEvent](
    cursors="audit",
    ordering=AUDIT_ORDERING,
    page_loader=lambda loaders, page: loaders.audit_events_by_actor(page),
    count_loader=lambda loaders: loaders.audit_event_count_by_actor(),
    node=lambda row: AuditEvent(row=row),
)
