"""Request body limits: bodies over ``STUDIO_MAX_BODY_BYTES`` are refused with 413 before the
application reads them (`app.middleware.RequestMiddleware` applies these rules).

A declared ``Content-Length`` is checked up front; a body of unknown length (chunked) is counted
as it arrives (`counting`). Multipart requests (file uploads) may be larger: up to
``STUDIO_MAX_UPLOAD_BYTES`` plus the normal limit for the operation and the multipart framing.

The rest of a refused body is read and thrown away before the 413 is sent, up to `DRAIN_FACTOR`
times the limit in all: a server that closes while the body is still arriving makes the
client's side see a reset (or a broken pipe) and lose the answer (nginx's "lingering close"
exists for this). A larger body, or one whose client waits for ``100 Continue``, is answered at
once, with ``Connection: close``.
"""

from __future__ import annotations

from starlette.types import Message, Receive

#: How much of a refused body is read and thrown away, as a multiple of the limit.
DRAIN_FACTOR = 4


def limit_for(content_type: str, max_bytes: int, max_upload_bytes: int) -> int:
    if content_type.lower().startswith("multipart/form-data"):
        return max_bytes + max_upload_bytes
    return max_bytes


class Drain:
    """What is left of a refused body, read and thrown away."""

    def __init__(self, limit: int, *, waits_for_continue: bool) -> None:
        self.budget = DRAIN_FACTOR * limit
        self.received = 0
        self.waits_for_continue = waits_for_continue

    async def read_rest(self, receive: Receive) -> bool:
        """Whether the whole body arrived within the budget (the connection can then go on).
        A client waiting for ``100 Continue`` has sent nothing: reading would invite it."""
        if self.waits_for_continue:
            return False
        while self.received <= self.budget:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client went away
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False


class BodyTooLarge(Exception):
    def __init__(self, more_body: bool) -> None:
        super().__init__("request body over the limit")
        self.more_body = more_body


def counting(receive: Receive, drain: Drain, limit: int) -> Receive:
    """``receive``, raising `BodyTooLarge` once the body read so far is over ``limit``."""

    async def counting_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            drain.received += len(message.get("body", b""))
            if drain.received > limit:
                raise BodyTooLarge(message.get("more_body", False))
        return message

    return counting_receive


def too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."
