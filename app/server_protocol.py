"""The HTTP/1.1 protocol `studio serve` runs: uvicorn's httptools protocol with a bound on the
size of a request's head (its request line and header fields).

llhttp, the parser httptools wraps, keeps header fields of any size (uvicorn bounds them only
under h11, with ``h11_max_incomplete_event_size``), so a client could make the server hold
megabytes per connection before any middleware sees the request. This protocol counts the head
as it arrives and, once it is over ``STUDIO_MAX_HEADER_BYTES`` (handed to uvicorn as
``h11_max_incomplete_event_size``, the same bound its h11 protocol keeps), answers
``431 Request Header Fields Too Large`` (RFC 6585) with a GraphQL error and closes.

Two counts, each a lower bound of the head's size, so a request within the limit is never
refused: what the parser has handed over (the URL, every complete header field), and the bytes
of every chunk received wholly inside the head (a header field still arriving is held inside
the parser, out of sight; this count bounds it).

The close lingers, as nginx's does: the answer is sent and the connection half-closed, and what
the client still sends is read and thrown away for a few seconds, so that its kernel does not
see a reset and drop the answer before the client reads it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: The bound when uvicorn is given none (``h11``'s own default).
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
#: How long, and for how many bytes, a refused connection is read before it is closed.
LINGER_SECONDS = 5.0
LINGER_MAX_BYTES = 64 * 1024 * 1024


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn builds each access line's arguments (the client, the path) before asking the
        # logger, which drops them below INFO: ask it once per connection instead.
        self.access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self._in_head = False  # between a request's first byte and the end of its header fields
        self._parsed_bytes = 0  # the URL and the complete header fields of the current head
        self._chunk_bytes = 0  # the chunks received wholly inside the current head
        self._refused = False
        self._lingered_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._linger(len(data))
            return
        whole_chunk_in_head = self._in_head
        super().data_received(data)  # may refuse (`_count`)
        if whole_chunk_in_head and self._in_head and not self._refused:
            self._chunk_bytes += len(data)
            if self._chunk_bytes > self.max_head_bytes:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_bytes = self._chunk_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # `_count` stops the parser with an error, which uvicorn answers (and logs) as an
        # invalid request: the 431 has gone out already.
        if not self._refused:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_head_bytes:
            self._refuse()
            raise _HeadTooLarge  # stops the parser (httptools turns it into a parser error)

    def _refuse(self) -> None:
        self._refused = True
        self.logger.warning(
            "request head over %d bytes from %s: refused with 431", self.max_head_bytes, self.client
        )
        self.transport.write(_response(self.max_head_bytes, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer, then FIN; what arrives still is read
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _linger(self, size: int) -> None:
        self._lingered_bytes += size
        if self._lingered_bytes > LINGER_MAX_BYTES:
            self.transport.close()


class _HeadTooLarge(Exception):
    pass


def _response(limit: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    error = {
        "message": f"The request's header fields are larger than {limit} bytes.",
        "extensions": {"code": "BAD_USER_INPUT", "limit": "max_header_bytes"},
    }
    body = json.dumps({"errors": [error]}).encode()
    lines = [STATUS_LINE[431]]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n",
        b"\r\n",
        body,
    ]
    return b"".join(lines)
