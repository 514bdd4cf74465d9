"""SCRIPT written by a hosted model (app/pipeline/hosted_script.py, chat_client.py,
script_answer.py), against a fake OpenAI-compatible server on 127.0.0.1 (`tests.support.
chat_model`): the model's script when it answers well, the built-in summariser with a logged
warning when it does not, and the API key in no log line whatever happens.

The page comes from the tests' site (`tests.support.pages`); `ConnectionLog` refuses every
connection to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.pipeline import chat_client, fetch
from app.pipeline.hosted_script import HostedScript
from app.pipeline.sentences import MAX_SEGMENT_CHARS, split_sentences
from app.settings import Settings, SettingsError, load_settings
from app.worker.pipeline import ProgressMeter, StageContext, StageError, VideoInput
from app.worker.stages import ScriptFromDescription, default_stages
from db.models import VideoInputType
from tests.support.articles import LONG_SECTIONS, LONG_TITLE
from tests.support.browser import serve
from tests.support.chat_model import GOOD_SCRIPT, PATH, ChatModel
from tests.support.pages import ConnectionLog, fake_resolver
from tests.support.stages import stage_context

API_KEY = "sk-test-4f9c2e7a1b8d6053e2a9c4b7d1f0e8a3"


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    log = ConnectionLog()
    original = asyncio.base_events.BaseEventLoop.create_connection
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", log.wrap(original))
    resolver = fake_resolver({"model.example": ["93.184.216.34"], "gpu.lan": ["10.1.2.3"]}, [])
    monkeypatch.setattr(chat_client, "resolve_host", resolver)
    monkeypatch.setattr(fetch, "resolve_host", resolver)
    return log


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[ChatModel, str]]:
    fake = ChatModel()
    with serve(fake.app()) as base_url:
        yield fake, base_url


@pytest.fixture
def fake(model: tuple[ChatModel, str]) -> ChatModel:
    model[0].mode, model[0].requests = "ok", []
    return model[0]


def _settings(monkeypatch: pytest.MonkeyPatch, url: str, **overrides: Any) -> Settings:
    monkeypatch.setenv("STUDIO_SCRIPT_MODEL_API_KEY", API_KEY)  # the environment, as deployed
    return load_settings(
        fetch_allowed_hosts="127.0.0.1",
        fetch_timeout_seconds=2,
        script_model_url=url,
        script_model_name="fake-model",
        script_model_timeout_seconds=1,
        script_model_max_response_bytes=100_000,
        **overrides,
    )


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, model: tuple[ChatModel, str]) -> Settings:
    return _settings(monkeypatch, model[1] + PATH)


def _video(site: str, **overrides: Any) -> VideoInput:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "title": "Tides video",
        "description": None,
        "input_type": VideoInputType.URL,
        "source_url": f"{site}/long-article",
        "voice_profile_id": None,
        "audio_settings": {"speed": 1.0, "language": "en"},
        "target_duration_seconds": 60,
    } | overrides
    return VideoInput(**values)


async def _run(settings: Settings, video: VideoInput) -> dict[str, Any]:
    stage = default_stages(settings)[0]
    assert isinstance(stage, HostedScript)
    meter = ProgressMeter([1.0])
    context = StageContext(
        job_id=uuid.uuid4(), attempt=1, stage_index=0, meter=meter, stopped=lambda: None
    )
    result = await stage.run(context, video, {})
    assert meter.value == 100
    return result


async def test_the_models_script_is_the_videos(
    site: str, settings: Settings, fake: ChatModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await _run(settings, _video(site))
    assert result["writer"] == "hosted"
    assert "hostedModelFailure" not in result
    assert result["title"] == GOOD_SCRIPT["title"]
    segments = result["segments"]
    assert segments[0] == {"index": 0, "text": GOOD_SCRIPT["title"], "kind": "title"}
    assert [s["index"] for s in segments] == list(range(len(segments)))
    # The long second scene is cut into scenes of one or two sentences, under its heading.
    scenes = segments[1:]
    assert all(1 <= len(split_sentences(s["text"])) <= 2 for s in scenes)
    assert all(len(s["text"]) <= MAX_SEGMENT_CHARS for s in scenes)
    assert [(s["section"], s["heading"]) for s in scenes] == [
        (0, None),
        (1, "The pull of the moon"),
        (1, "The pull of the moon"),
        (2, "The part the sun plays"),
    ]
    assert (
        " ".join(s["text"] for s in scenes).split()
        == " ".join(scene["text"] for scene in GOOD_SCRIPT["scenes"]).split()
    )
    # What was sent: the model, the key as a bearer token, the page's title and headings.
    (request,) = fake.requests
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    body = request["body"]
    assert body["model"] == "fake-model"
    prompt = body["messages"][1]["content"]
    assert f"Title: {LONG_TITLE}" in prompt
    assert all(f"## {heading}" in prompt for heading, _ in LONG_SECTIONS if heading)
    assert "about 216 words" in prompt  # 60 s at 216.9 words a minute
    assert API_KEY not in caplog.text


async def test_the_request_holds_no_more_of_the_source_than_allowed(
    site: str, monkeypatch: pytest.MonkeyPatch, model: tuple[ChatModel, str], fake: ChatModel
) -> None:
    settings = _settings(monkeypatch, model[1] + PATH, script_model_max_input_chars=1000)
    await _run(settings, _video(site))
    prompt = fake.requests[0]["body"]["messages"][1]["content"]
    source = prompt.split("Source:\n", 1)[1]
    assert len(source) == 1000
    assert source.startswith("Twice a day the sea climbs up the beach")
    assert fake.requests[0]["body"]["max_tokens"] == 2 * 216 + 400


async def test_a_fenced_answer_and_a_description_video_are_read(
    site: str, settings: Settings, fake: ChatModel
) -> None:
    fake.mode = "fenced"
    video = _video(
        site,
        input_type=VideoInputType.DESCRIPTION,
        source_url=None,
        description="The moon pulls the sea. The sea rises twice a day.",
    )
    result = await _run(settings, video)
    assert result["writer"] == "hosted"
    assert "The moon pulls the sea." in fake.requests[0]["body"]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("mode", "reason", "level"),
    [
        ("malformed", "the model's answer is not JSON", logging.WARNING),
        (
            "not-a-script",
            'the model\'s answer is not an object with a "scenes" list',
            logging.WARNING,
        ),
        ("too-long", "more than 1.5 times the 60 s asked for", logging.WARNING),
        ("slow", "no answer within 1 seconds", logging.WARNING),
        ("oversize", "the answer is larger than 100000 bytes", logging.WARNING),
        ("unauthorized", "the endpoint answered 401 Unauthorized", logging.ERROR),
        ("redirect", "the endpoint answered 307 Temporary Redirect", logging.WARNING),
    ],
)
async def test_a_failing_model_leaves_the_script_to_the_summariser(
    site: str,
    settings: Settings,
    fake: ChatModel,
    caplog: pytest.LogCaptureFixture,
    connections: ConnectionLog,
    mode: str,
    reason: str,
    level: int,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: the key must be in none
    fake.mode = mode
    video = _video(site)
    result = await _run(settings, video)
    builtin = await ScriptFromDescription(settings).run(stage_context(), video, {})
    assert result["writer"] == "summary"
    assert reason in result["hostedModelFailure"]
    assert result["segments"] == builtin["segments"]
    (warning,) = [r for r in caplog.records if r.name == "app.pipeline.hosted_script"]
    assert warning.levelno == level
    assert reason in warning.getMessage()
    assert str(video.id) in warning.getMessage()
    assert len(fake.requests) == 1  # no retry, and the redirect is not followed
    assert API_KEY not in caplog.text
    assert all(API_KEY not in str(record.args) for record in caplog.records)
    assert all(port != 9 for _, port in connections.attempts)


async def test_the_key_never_goes_in_clear_to_a_public_address(
    site: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    connections: ConnectionLog,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    settings = _settings(monkeypatch, "http://model.example/v1/chat/completions")
    result = await _run(settings, _video(site))
    assert result["writer"] == "summary"
    assert (
        "refusing to send the API key over plain http to a public address"
        in (result["hostedModelFailure"])
    )
    assert ("93.184.216.34", 80) not in connections.attempts
    assert API_KEY not in caplog.text


async def test_an_unreadable_page_fails_the_job_as_without_a_model(
    site: str, settings: Settings, fake: ChatModel
) -> None:
    with pytest.raises(StageError, match=r"The page has no readable text\."):
        await _run(settings, _video(site, source_url=f"{site}/no-text"))
    assert fake.requests == []


def test_the_key_comes_from_the_environment_and_never_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, "http://gpu.lan:8080/v1/chat/completions")
    assert settings.script_model_api_key is not None
    assert settings.script_model_api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("url", "name", "message"),
    [
        ("ftp://gpu.lan/v1", "m", "STUDIO_SCRIPT_MODEL_URL: must be an http:// or https:// URL"),
        ("https://user:pw@gpu.lan/v1", "m", "must not carry credentials"),
        ("https://gpu.lan/v1", None, "STUDIO_SCRIPT_MODEL_NAME is not"),
    ],
)
def test_a_wrong_model_setting_stops_the_process_readably(
    url: str, name: str | None, message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("?", r"\?")):
        load_settings(script_model_url=url, script_model_name=name)


def test_without_a_model_the_built_in_writer_is_the_stage() -> None:
    assert isinstance(default_stages(load_settings())[0], ScriptFromDescription)
