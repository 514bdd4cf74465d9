"""From a description, or a page served on 127.0.0.1, to an MP4 — through a real `studio serve`
(with its in-process worker) over HTTP and websockets, as a client sees it. The MP4 is fetched
through its signed `mediaUrl` and decoded with ffmpeg: H.264 video and AAC audio, a duration that
is the narration's, audible narration; the captions fetched through their URL cover the
narration in order. A URL the studio must not fetch ends the job FAILED with a readable message
and leaves no files."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from app.pipeline.storyboard import END_CARD_MS
from db.url import DatabaseURL
from tests.support.live_states import assert_job_states
from tests.support.pages import ARTICLE_TITLE
from tests.support.processes import USER_RENDER, clean_env, running_studio
from tests.support.video import RATE, decoded_audio, rms, streams
from tests.support.websocket import TRANSPORT_WS, websocket_url

SECRET = "video-generation-test-secret-key-0123456789"
DESCRIPTION = (
    "Sunlight knocks electrons loose in a thin layer of silicon. The loose electrons flow one "
    "way, and that flow is a current.\n\nAn inverter turns it into the current a house uses."
)
CREATE = """mutation($input: CreateVideoInput!) { createVideo(input: $input) { video { id } } }"""
START = "mutation($id: ID!) { startGeneration(videoId: $id) { job { id status } } }"
PROGRESS = """subscription($id: ID!) {
  jobProgress(jobId: $id) { status stage progress error video { status errorMessage } }
}"""
PLAYER = """query($id: ID!) {
  video(id: $id) {
    status mediaUrl posterUrl durationMs
    script { segments { index text startMs endMs } }
    captionTracks { language format url }
  }
}"""
CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)")


@dataclass
class Studio:
    url: str
    headers: dict[str, str]
    media_dir: Path

    async def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as http:
            response = await http.post(
                "/graphql", headers=self.headers, json={"query": query, "variables": variables}
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def fetch(self, url: str) -> bytes:
        async with httpx.AsyncClient(base_url=self.url) as http:  # no token: the URL is signed
            response = await http.get(url)
        assert response.status_code == 200, response.text
        return response.content

    async def generate(self, video_input: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """Create a video, start its generation and follow it to the end over a websocket;
        the video's id and every state the subscriber saw."""
        video_id = (await self.graphql(CREATE, {"input": video_input}))["createVideo"]["video"][
            "id"
        ]
        job = (await self.graphql(START, {"id": video_id}))["startGeneration"]["job"]
        transport = WebsocketsTransport(
            url=websocket_url(self.url),
            init_payload=self.headers,
            subprotocols=[TRANSPORT_WS],
            connect_args={"proxy": None},
        )
        states: list[dict[str, Any]] = []
        async with asyncio.timeout(120), Client(transport=transport) as session:
            request = GraphQLRequest(PROGRESS, variable_values={"id": job["id"]})
            async for result in session.subscribe(request):
                states.append(result["jobProgress"])  # the stream ends with the job
        return video_id, states


@pytest.fixture
def studio(migrated_database: DatabaseURL, tmp_path: Path) -> Iterator[Studio]:
    media_dir = tmp_path / "media"
    env = clean_env(
        DATABASE_URL=migrated_database.render(hide_password=False),
        STUDIO_SECRET_KEY=SECRET,
        STUDIO_MEDIA_DIR=str(media_dir),
        STUDIO_INPROCESS_WORKER="true",
        STUDIO_FETCH_ALLOWED_HOSTS="127.0.0.1",
        **USER_RENDER,  # not the tests' small frames
    )
    with running_studio(env, tmp_path, email="maker@example.com") as process:
        yield Studio(process.url, process.headers, media_dir)


async def test_a_description_becomes_a_playable_mp4_with_captions(
    studio: Studio, tmp_path: Path
) -> None:
    video_id, states = await studio.generate(
        {"title": "How solar panels work", "description": DESCRIPTION, "inputType": "DESCRIPTION"}
    )
    assert_job_states(states)
    assert states[-1]["video"]["status"] == "READY"

    video = (await studio.graphql(PLAYER, {"id": video_id}))["video"]
    segments = video["script"]["segments"]
    assert segments[0]["text"] == "How solar panels work"
    narration_ms = segments[-1]["endMs"]
    assert video["durationMs"] == narration_ms + END_CARD_MS  # the end card follows

    mp4 = tmp_path / "video.mp4"
    mp4.write_bytes(await studio.fetch(video["mediaUrl"]))
    kinds, seconds = streams(mp4)
    assert (kinds["Video"], kinds["Audio"], kinds["Subtitle"]) == ("h264", "aac", "mov_text")
    assert seconds == pytest.approx(video["durationMs"] / 1000, abs=0.5)
    audio = decoded_audio(mp4)
    assert len(audio) / RATE == pytest.approx(video["durationMs"] / 1000, abs=0.5)
    for segment in segments:  # each segment's narration is audible where the script says
        assert rms(audio, segment["startMs"] / 1000, segment["endMs"] / 1000) > 300, segment
    assert (await studio.fetch(video["posterUrl"]))[:8] == b"\x89PNG\r\n\x1a\n"

    (vtt,) = [t for t in video["captionTracks"] if t["format"] == "vtt"]
    cues = _cues((await studio.fetch(vtt["url"])).decode())
    assert cues == sorted(cues)
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(cues))
    for segment in segments:  # the cues inside each segment's time cover it exactly
        inside = [c for c in cues if segment["startMs"] <= c[0] < segment["endMs"]]
        assert inside[0][0] == segment["startMs"]
        assert inside[-1][1] == segment["endMs"]
    assert cues[-1][1] == narration_ms


async def test_a_page_on_a_local_server_becomes_a_video(
    studio: Studio, site: str, tmp_path: Path
) -> None:
    video_id, states = await studio.generate(
        {"title": "From the web", "inputType": "URL", "sourceUrl": f"{site}/article"}
    )
    assert_job_states(states)
    video = (await studio.graphql(PLAYER, {"id": video_id}))["video"]
    segments = video["script"]["segments"]
    assert segments[0]["text"] == ARTICLE_TITLE
    assert any("inverter" in segment["text"] for segment in segments)
    mp4 = tmp_path / "page.mp4"
    mp4.write_bytes(await studio.fetch(video["mediaUrl"]))
    kinds, seconds = streams(mp4)
    assert (kinds["Video"], kinds["Audio"]) == ("h264", "aac")
    assert seconds == pytest.approx(video["durationMs"] / 1000, abs=0.5)


async def test_a_refused_address_fails_readably_and_leaves_no_files(studio: Studio) -> None:
    video_id, states = await studio.generate(
        {"title": "Metadata", "inputType": "URL", "sourceUrl": "http://169.254.169.254/latest/"}
    )
    assert_job_states(states, ends="FAILED")
    last = states[-1]
    assert last["error"] == "The address 169.254.169.254 is not allowed (link-local)."
    assert last["video"] == {"status": "ERROR", "errorMessage": last["error"]}
    video = (await studio.graphql(PLAYER, {"id": video_id}))["video"]
    assert (video["mediaUrl"], video["posterUrl"], video["durationMs"]) == (None, None, None)
    videos = studio.media_dir / "videos"
    assert not videos.exists() or not any(videos.iterdir())


def _cues(vtt: str) -> list[tuple[int, int]]:
    """Each cue's (start, end) in milliseconds."""
    found = []
    for match in CUE.finditer(vtt):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(part) for part in match.groups())
        found.append(
            (
                ((h1 * 60 + m1) * 60 + s1) * 1000 + ms1,
                ((h2 * 60 + m2) * 60 + s2) * 1000 + ms2,
            )
        )
    assert found, vtt
    return found
