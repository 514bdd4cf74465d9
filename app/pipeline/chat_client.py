"""One request to an OpenAI-compatible chat-completions endpoint, within limits.

The endpoint is the operator's (``STUDIO_SCRIPT_MODEL_URL``), not a user's, so it may be on a
private network or on this machine (a model served next to the studio): the page fetcher's
refusal of private addresses (`app.pipeline.fetch`) guards against URLs users type, and this URL
is typed by whoever runs the studio. What a user controls is the text of the request (their
description, or the page they named) and, through it, perhaps the model's answer; neither can
change where the request goes. The rest of the fetcher's care still applies:

* the URL is checked at start-up (http or https, a host, no credentials in it: `app.settings`);
* redirects are not followed: the request carries the API key, and a redirect is answered as a
  failure that names the status (configure the final URL);
* the API key travels only over https, or over http to an address that is not public (loopback,
  a private network): an ``http://`` endpoint whose host resolves to a public address is
  refused before anything is sent;
* the whole exchange is bounded by ``STUDIO_SCRIPT_MODEL_TIMEOUT_SECONDS``, and the answer by
  ``STUDIO_SCRIPT_MODEL_MAX_RESPONSE_BYTES`` (read as it streams, refused past the limit); the
  request holds at most ``STUDIO_SCRIPT_MODEL_MAX_INPUT_CHARS`` of source text;
* proxies and ``.netrc`` from the environment are not used (``trust_env=False``).

The key is never logged, never put in an exception's message, and ``Settings`` holds it as a
``SecretStr`` (its ``repr`` shows stars). Every failure is a `ModelFailure` whose ``reason``
says what happened, for the log line of the stage that falls back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from app.pipeline.fetch import address_problem, parse_address, resolve_host
from app.settings import Settings


class ModelFailure(Exception):
    """The model gave no usable answer; ``reason`` is safe to log (no key, no answer text)."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def complete(settings: Settings, body: dict[str, Any]) -> str:
    """The first choice's message content for the chat-completions request ``body``."""
    url = settings.script_model_url
    if url is None:
        raise ModelFailure("no endpoint is configured")
    seconds = settings.script_model_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            await _check_key_transport(settings, httpx.URL(url))
            answer = await _post(settings, url, body)
    except TimeoutError:
        raise ModelFailure(f"no answer within {seconds:g} seconds") from None
    return _content(answer)


async def _check_key_transport(settings: Settings, url: httpx.URL) -> None:
    if settings.script_model_api_key is None or url.scheme == "https":
        return
    host = url.host
    literal = parse_address(host)
    try:
        addresses = [literal] if literal is not None else await resolve_host(host, url.port or 80)
    except OSError as error:
        raise ModelFailure(f"the endpoint's host {host} could not be resolved ({error})") from None
    public = [address for address in addresses if address_problem(address) is None]
    if public:
        raise ModelFailure(
            f"refusing to send the API key over plain http to a public address "
            f"({host}: {public[0].compressed}); use https"
        )


async def _post(settings: Settings, url: str, body: dict[str, Any]) -> Any:
    headers = {"Accept": "application/json"}
    if settings.script_model_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.script_model_api_key.get_secret_value()}"
    seconds = settings.script_model_timeout_seconds
    limit = settings.script_model_max_response_bytes
    try:
        async with (
            httpx.AsyncClient(
                timeout=httpx.Timeout(seconds), follow_redirects=False, trust_env=False
            ) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise ModelFailure(
                    f"the endpoint answered {response.status_code} {response.reason_phrase}",
                    status=response.status_code,
                )
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise ModelFailure(f"the answer is larger than {limit} bytes")
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > limit:
                    raise ModelFailure(f"the answer is larger than {limit} bytes")
    except httpx.TimeoutException:
        raise ModelFailure(f"no answer within {seconds:g} seconds") from None
    except httpx.HTTPError as error:
        raise ModelFailure(f"the request failed ({type(error).__name__})") from None
    try:
        return json.loads(received)
    except (ValueError, UnicodeDecodeError):
        raise ModelFailure("the endpoint's answer is not JSON") from None


def _content(answer: Any) -> str:
    """``choices[0].message.content`` of a chat-completions answer."""
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ModelFailure("the answer is not a chat completion (no choices[0].message)") from None
    if not isinstance(content, str) or not content.strip():
        raise ModelFailure("the model's message is empty")
    return content
