"""A URL video's scenes show the page's own pictures (app/pipeline/pictures.py, the RENDER stage).

A site on 127.0.0.1 serves an article whose ``og:image`` and ``<img>`` are PNGs made with ffmpeg
in colours no generated background has (pure blue and yellow halves; magenta and cyan), and
"pictures" that must be refused: HTML served as ``image/png``, a PNG header announcing 30,000 by
30,000 pixels, a real PNG over the size limit, a PNG whose data is garbage, and one on a private
address. SCRIPT, VOICE (eSpeak NG), CAPTIONS and RENDER run for real; the rendered frames are
decoded and their colours counted.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import subprocess
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.pipeline import fetch
from app.pipeline.captions import TimedCaptions
from app.pipeline.image_header import read_header
from app.pipeline.pictures import MAX_CANDIDATES, gather_pictures, page_picture_urls
from app.pipeline.render_stage import FfmpegRender
from app.pipeline.run_media import RunFolder
from app.pipeline.voice import EspeakVoice
from app.settings import Settings, load_settings
from app.worker.pipeline import JobStopped, ProgressMeter, StageContext, VideoInput
from app.worker.stages import ScriptFromDescription
from db.models import JobStage, VideoInputType
from tests.support.browser import serve
from tests.support.pages import ConnectionLog, fake_resolver
from tests.support.video import FFMPEG, rgb_frames

WIDTH, HEIGHT = 320, 180
PARAGRAPHS = [
    "Lighthouses warned ships away from rocks for centuries. Each one had its own light.",
    "Today most of them run on their own, and satellites guide the ships instead.",
]
PURE = {  # colours far from anything a generated background holds
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
}


def article(head: str, body: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (
        f"<!doctype html><html><head><title>Lighthouses</title>{head}</head>"
        f"<body><article><h1>Lighthouses</h1>{body}{paragraphs}</article></body></html>"
    )


GOOD = article(
    '<meta property="og:image" content="/pictures/blue-yellow.png">',
    '<img src="../pictures/magenta-cyan.png" width="640">'
    '<img src="/icon.png" width="16" height="16">'
    '<img src="data:image/png;base64,iVBORw0KGgo=">'
    '<img src="/logo.svg">',
)
BAD = article(
    '<meta property="og:image" content="/pictures/html.png">',
    '<img src="/pictures/huge-header.png"><img src="/pictures/too-many-bytes.png">'
    '<img src="/pictures/garbage.png"><img src="http://10.0.0.1/private.png">',
)


def halves(left: str, right: str) -> bytes:
    """A 640 x 360 PNG: ``left`` on the left half, ``right`` on the right (ffmpeg colours)."""
    graph = f"color=c={left}:s=320x360[l];color=c={right}:s=320x360[r];[l][r]hstack"
    command = [FFMPEG, "-v", "error", "-f", "lavfi", "-i", graph, "-frames:v", "1",
               "-f", "image2pipe", "-c:v", "png", "-"]  # fmt: skip
    return subprocess.run(command, capture_output=True, check=True).stdout


def noise_png() -> bytes:
    """A real PNG of random pixels, a few hundred kilobytes."""
    noise = "nullsrc=s=400x400,geq=random(1)*255:128:128"
    command = [FFMPEG, "-v", "error", "-f", "lavfi", "-i", noise,
               "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"]  # fmt: skip
    return subprocess.run(command, capture_output=True, check=True).stdout


def png_header(width: int, height: int, data: bytes) -> bytes:
    """A PNG signature and header chunk for ``width`` x ``height``, then ``data``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
        + struct.pack(">I", zlib.crc32(chunk)) + data
    )  # fmt: skip


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    pictures = {
        "blue-yellow.png": (halves("blue", "yellow"), "image/png"),
        "magenta-cyan.png": (halves("magenta", "cyan"), "image/png"),
        "html.png": (b"<html><body>Not found</body></html>", "image/png"),
        "huge-header.png": (png_header(30_000, 30_000, b"\0" * 64), "image/png"),
        "too-many-bytes.png": (noise_png(), "image/png"),
        "garbage.png": (png_header(640, 360, bytes(range(256)) * 8), "image/png"),
    }

    async def page(request: Request) -> Response:
        return Response(
            GOOD if request.path_params["name"] == "good" else BAD, media_type="text/html"
        )

    async def picture(request: Request) -> Response:
        body, kind = pictures[request.path_params["name"]]
        return Response(body, media_type=kind)

    app = Starlette(routes=[Route("/page/{name}", page), Route("/pictures/{name}", picture)])
    with serve(app) as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
    log = ConnectionLog()
    original = asyncio.base_events.BaseEventLoop.create_connection
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", log.wrap(original))
    monkeypatch.setattr(fetch, "resolve_host", fake_resolver({}, []))
    return log


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        media_dir=tmp_path / "media",
        fetch_allowed_hosts="127.0.0.1",
        fetch_timeout_seconds=5,
        render_picture_max_bytes=100_000,
        render_width=WIDTH,
        render_height=HEIGHT,
        render_fps=10,
    )


def url_video(url: str) -> VideoInput:
    return VideoInput(
        id=uuid.uuid4(),
        title="Lighthouses",
        description=None,
        input_type=VideoInputType.URL,
        source_url=url,
        voice_profile_id=None,
        audio_settings={"speed": 1.6, "language": "en"},
    )


def context(job_id: uuid.UUID, stopped: Any = lambda: None) -> StageContext:
    return StageContext(
        job_id=job_id, attempt=1, stage_index=0, meter=ProgressMeter([1.0]), stopped=stopped
    )


async def run_stages(
    settings: Settings, video: VideoInput, job_id: uuid.UUID, stopped: Any = lambda: None
) -> dict[JobStage, dict[str, Any]]:
    results: dict[JobStage, dict[str, Any]] = {}
    for stage in (ScriptFromDescription(settings), EspeakVoice(settings), TimedCaptions(settings)):
        results[stage.name] = await stage.run(context(job_id), video, results)
    render = FfmpegRender(settings)
    results[JobStage.RENDER] = await render.run(context(job_id, stopped), video, results)
    return results


def shares(video: Path, seconds: float) -> dict[str, float]:
    """The share of the frame at ``seconds`` (above the captions) in each `PURE` colour."""
    [raw] = rgb_frames(video, (WIDTH, HEIGHT), at=seconds)
    frame = np.frombuffer(raw, np.uint8).reshape(HEIGHT, WIDTH, 3)[: HEIGHT // 2].astype(int)
    return {
        name: float((np.abs(frame - np.array(colour)).max(axis=2) <= 40).mean())
        for name, colour in PURE.items()
    }


def middle_of(results: dict[JobStage, dict[str, Any]], index: int) -> float:
    timing = results[JobStage.VOICE]["timings"][index]
    return (int(timing["startMs"]) + int(timing["endMs"])) / 2000


# --- the page's own pictures --------------------------------------------------------------------


async def test_a_url_videos_scenes_show_the_pages_own_pictures(
    site: str, settings: Settings
) -> None:
    video, job_id = url_video(f"{site}/page/good"), uuid.uuid4()
    results = await run_stages(settings, video, job_id)

    assert results[JobStage.SCRIPT]["pictures"] == [
        f"{site}/pictures/blue-yellow.png",  # og:image first
        f"{site}/pictures/magenta-cyan.png",  # then the article's own, not the icon or the SVG
    ]
    run = RunFolder(video.id, job_id, 1)
    rendered = results[JobStage.RENDER]
    assert rendered["pictures"] == [
        {"path": run.file("pictures", "0.jpg"), "source": f"{site}/pictures/blue-yellow.png"},
        {"path": run.file("pictures", "1.jpg"), "source": f"{site}/pictures/magenta-cyan.png"},
    ]
    root = settings.resolved_media_dir
    assert sorted(p.name for p in (root / run.file("pictures")).iterdir()) == ["0.jpg", "1.jpg"]
    assert read_header((root / run.file("pictures", "0.jpg")).read_bytes()) is not None

    # The scenes take the pictures in turn: the first segment after the title the second
    # picture, the next one the first again.
    mp4 = root / rendered["mediaPath"]
    segments = len(results[JobStage.VOICE]["timings"])
    assert segments >= 3
    first, second = shares(mp4, middle_of(results, 1)), shares(mp4, middle_of(results, 2))
    assert min(first["magenta"], first["cyan"]) > 0.1, first
    assert first["blue"] == first["yellow"] == 0, first
    assert min(second["blue"], second["yellow"]) > 0.1, second


async def test_pictures_that_are_not_pictures_or_too_large_are_refused_and_scenes_get_backgrounds(
    site: str, settings: Settings, connections: ConnectionLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.pipeline.pictures")
    video, job_id = url_video(f"{site}/page/bad"), uuid.uuid4()
    results = await run_stages(settings, video, job_id)  # the job does not fail

    assert len(results[JobStage.SCRIPT]["pictures"]) == 5
    assert results[JobStage.RENDER]["pictures"] == []
    reasons = "\n".join(record.getMessage() for record in caplog.records)
    assert "html.png not used: not a JPEG, PNG, WebP or GIF" in reasons
    assert "huge-header.png not used: 30000x30000 is out of bounds" in reasons
    assert "too-many-bytes.png not used: The picture is larger than 0.1 MB." in reasons
    assert "garbage.png not used: ffmpeg could not decode it" in reasons
    assert "private.png not used: The address 10.0.0.1 is not allowed (private network)." in reasons
    assert all(host == "127.0.0.1" for host, _ in connections.attempts)

    root = settings.resolved_media_dir
    run = RunFolder(video.id, job_id, 1)
    assert not list((root / run.file("pictures")).iterdir())  # nothing half-checked is left
    mp4 = root / results[JobStage.RENDER]["mediaPath"]
    for index in (1, 2):
        found = shares(mp4, middle_of(results, index))
        assert max(found.values()) == 0, found  # generated backgrounds, in the theme's colours
        [raw] = rgb_frames(mp4, (WIDTH, HEIGHT), at=middle_of(results, index))
        assert np.frombuffer(raw, np.uint8).std() > 5


async def test_a_stopped_render_removes_the_pictures_it_fetched(
    site: str, settings: Settings
) -> None:
    video, job_id = url_video(f"{site}/page/good"), uuid.uuid4()
    run = RunFolder(video.id, job_id, 1)
    pictures = settings.resolved_media_dir / run.file("pictures")
    fetched: list[str] = []

    def stopped() -> str | None:
        # Cancelled once the pictures are in the attempt's folder, before the video is made.
        fetched.extend(p.name for p in pictures.glob("*.jpg"))
        return "cancelled" if fetched else None

    with pytest.raises(JobStopped):
        await run_stages(settings, video, job_id, stopped)
    assert fetched
    assert not (settings.resolved_media_dir / run.relative).exists()


async def test_no_more_pictures_are_kept_than_the_setting_allows(
    site: str, settings: Settings, tmp_path: Path
) -> None:
    one = settings.model_copy(update={"render_max_pictures": 1})
    urls = [f"{site}/pictures/magenta-cyan.png", f"{site}/pictures/blue-yellow.png"]
    kept = await gather_pictures(
        urls, settings=one, folder=tmp_path / "pictures", size=(358, 202), exe=FFMPEG
    )
    assert [picture.source for picture in kept] == urls[:1]
    assert read_header(kept[0].path.read_bytes()) is not None
    assert list((tmp_path / "pictures").iterdir()) == [kept[0].path]  # the other one is gone


# --- finding a page's pictures and reading their headers -----------------------------------------


def test_a_pages_pictures_are_listed_declared_first_then_its_images() -> None:
    html = (
        '<html><head><meta name="twitter:image" content="https://cdn.example/card.jpg">'
        '<meta property="og:image" content="/og.png"><link rel="image_src" href="rel.webp">'
        "</head><body><img src='a.jpg'><img data-src='/lazy.gif'><img src='a.jpg'>"
        '<img src="tiny.png" width="40"><img src="javascript:alert(1)"><img src="x.svg">'
        "<img src='ftp://example.org/f.png'></body></html>"
    )
    assert page_picture_urls(html, "https://news.example/story/1") == [
        "https://cdn.example/card.jpg",
        "https://news.example/og.png",
        "https://news.example/story/rel.webp",
        "https://news.example/story/a.jpg",
        "https://news.example/lazy.gif",
    ]
    many = "".join(f"<img src='/{n}.jpg'>" for n in range(50))
    assert len(page_picture_urls(many, "https://news.example/")) == MAX_CANDIDATES


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("jpeg", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-f", "image2"]),
        ("progressive jpeg", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-huffman", "0"]),
        ("png", ["-c:v", "png", "-f", "image2"]),
        ("gif", ["-c:v", "gif", "-pix_fmt", "pal8", "-f", "gif"]),
        ("webp", ["-c:v", "libwebp", "-f", "webp"]),
        ("lossless webp", ["-c:v", "libwebp", "-lossless", "1", "-f", "webp"]),
    ],
)
def test_picture_headers_say_what_and_how_large_a_picture_is(
    name: str, encoding: list[str]
) -> None:
    if "-f" not in encoding:
        encoding = [*encoding, "-f", "image2"]
    picture = subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=234x124", "-frames:v", "1",
         *encoding, "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    header = read_header(picture)
    assert header is not None, name
    assert (header.format, header.width, header.height) == (name.split()[-1], 234, 124)


def test_bytes_that_are_no_picture_have_no_header() -> None:
    for data in (
        b"",
        b"<html>",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff\xe0\x00",
        b"RIFF\0\0\0\0WEBP",
    ):
        assert read_header(data) is None
