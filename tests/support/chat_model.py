"""A fake OpenAI-compatible chat-completions server, for the hosted SCRIPT stage's tests.

`ChatModel` is a Starlette app answering ``POST /v1/chat/completions`` the way its ``mode``
says: a good script, or one of the ways a hosted model fails (malformed JSON, an error status,
an answer too slow or too large, a redirect, a script far too long). It records every request it
got (headers and JSON body), so tests can check what was sent. Serve it with
`tests.support.browser.serve`: real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

PATH = "/v1/chat/completions"
GOOD_SCRIPT: dict[str, Any] = {
    "title": "Tides, in one minute",
    "scenes": [
        {"heading": None, "text": "Twice a day the sea rises and falls. The moon is why."},
        {
            "heading": "The pull of the moon",
            "text": "The moon pulls hardest on the side of the Earth that faces it. The oceans "
            "bulge towards it, and away from it on the far side. As the Earth turns, a coast "
            "passes through both bulges.",
        },
        {"heading": "The part the sun plays", "text": "The sun adds its own, smaller pull."},
    ],
}


@dataclass
class ChatModel:
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route(PATH, self._complete, methods=["POST"])])

    async def _complete(self, request: Request) -> Response:
        self.requests.append({"headers": dict(request.headers), "body": await request.json()})
        if self.mode == "ok":
            return _completion(json.dumps(GOOD_SCRIPT))
        if self.mode == "fenced":
            return _completion(f"```json\n{json.dumps(GOOD_SCRIPT)}\n```")
        if self.mode == "malformed":
            return _completion('{"title": "Tides", "scenes": [{"text": "The moon')
        if self.mode == "not-a-script":
            return _completion(json.dumps({"answer": "I cannot help with that."}))
        if self.mode == "too-long":
            scene = {"heading": None, "text": "The tide comes in and the tide goes out again."}
            return _completion(json.dumps({"title": "Tides", "scenes": [scene] * 150}))
        if self.mode == "oversize":
            return _completion(json.dumps(GOOD_SCRIPT) + " " * 600_000)
        if self.mode == "unauthorized":
            return JSONResponse({"error": {"message": "Incorrect API key"}}, status_code=401)
        if self.mode == "redirect":
            return RedirectResponse("http://127.0.0.1:9/v1/chat/completions", status_code=307)
        if self.mode == "slow":
            for _ in range(100):  # ten seconds, or until the client gives up
                if await request.is_disconnected():
                    break
                await asyncio.sleep(0.1)
            return _completion(json.dumps(GOOD_SCRIPT))
        raise AssertionError(f"unknown mode {self.mode}")


def _completion(content: str) -> Response:
    return JSONResponse(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )
