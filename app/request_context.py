"""Per-request values that logging needs without being handed them: the request id."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

NO_REQUEST = "-"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# A client-sent X-Request-ID is kept only when it is short and plain (it ends up in logs).
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(offered: str | None = None) -> str:
    if offered is not None and _ACCEPTABLE.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps every log record with the current request id (when there is one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or NO_REQUEST
        return True
