"""Pictures for a URL video's scenes, from the page itself.

`page_picture_urls` lists what a page offers, best first: its ``og:image`` (and
``twitter:image``, ``<link rel="image_src">``), then the ``<img>``s of its body, skipping
inline ``data:`` images, SVGs and images whose own ``width``/``height`` say they are icons;
at most `MAX_CANDIDATES`.

`gather_pictures` fetches them through the same safe fetcher as the page
(`app.pipeline.fetch.fetch_image`: its address rules, redirects, time limit) with a size limit
of its own, and keeps a picture only when

* its bytes really are a JPEG, PNG, WebP or GIF (`app.pipeline.image_header`), whatever the
  server called them;
* its header's size is within `MIN_SIDE` … `MAX_SIDE` pixels a side and `MAX_PIXELS` in all
  (refused before anything decodes it);
* ffmpeg decodes it, within `DECODE_SECONDS` (and refusing, itself, a frame of more than
  `MAX_PIXELS`, whatever the header said).

A kept picture is decoded once, scaled to cover the scene's still and cropped to it, and
written as a JPEG into the attempt's folder (``pictures/<n>.jpg``), where the render reads it;
a failed or stopped job's folder goes with everything else in it (`app.pipeline.run_media`).
A picture that fails any step is logged and skipped: its scene falls back to a generated
background; the job never fails for want of pictures. Fetches run a few at a time, and the
whole search gives up after twice the page-fetch timeout, keeping what it has.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from app.pipeline.fetch import FetchError, fetch_image
from app.pipeline.image_header import ImageHeader, read_header
from app.pipeline.render_process import RenderError, run_ffmpeg
from app.settings import Settings

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 12
MIN_SIDE = 64
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
DECODE_SECONDS = 20.0
CONCURRENT_FETCHES = 3
_META_NAMES = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)


class PictureRefused(Exception):
    """A picture that is not used; the message says why, for the logs."""


@dataclass(frozen=True)
class Picture:
    path: Path  # the prepared JPEG
    source: str  # the URL it came from


def page_picture_urls(html: str, base_url: str) -> list[str]:
    """The absolute http(s) URLs of the pictures ``html`` (found at ``base_url``) offers."""
    finder = _PictureFinder()
    finder.feed(html)
    finder.close()
    found: list[str] = []
    for raw in [*finder.declared, *finder.images]:
        url = urljoin(base_url, raw.strip())
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.path.lower().endswith(".svg"):
            continue
        if url not in found:
            found.append(url)
        if len(found) == MAX_CANDIDATES:
            break
    return found


async def gather_pictures(
    urls: list[str],
    *,
    settings: Settings,
    folder: Path,
    size: tuple[int, int],
    exe: str,
) -> list[Picture]:
    """Up to ``STUDIO_RENDER_MAX_PICTURES`` pictures from ``urls``, in their order, prepared at
    ``size`` in ``folder`` (see the module docstring)."""
    wanted = settings.render_max_pictures
    if not urls or wanted == 0:
        return []
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    gate = asyncio.Semaphore(CONCURRENT_FETCHES)
    kept: dict[int, Picture] = {}

    async def one(number: int, url: str) -> None:
        async with gate:
            if len(kept) >= wanted:
                return
            try:
                kept[number] = await _picture(url, number, settings, folder, size, exe)
            except (FetchError, PictureRefused) as refused:
                reason = refused.user_message if isinstance(refused, FetchError) else refused
                logger.info("picture %s not used: %s", url, reason)

    tasks = [asyncio.ensure_future(one(n, url)) for n, url in enumerate(urls[:MAX_CANDIDATES])]
    try:
        async with asyncio.timeout(2 * settings.fetch_timeout_seconds):
            await asyncio.gather(*tasks)
    except TimeoutError:
        logger.info("gave up looking for more pictures after %d", len(kept))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    chosen = [kept[number] for number in sorted(kept)]
    # A few run at once, so one more may have come in than is wanted: it is not left behind.
    await asyncio.to_thread(_remove, *(picture.path for picture in chosen[wanted:]))
    return chosen[:wanted]


def check_header(data: bytes) -> ImageHeader:
    """``data``'s header, or `PictureRefused` when it is no picture or an unsafe size."""
    header = read_header(data)
    if header is None:
        raise PictureRefused("not a JPEG, PNG, WebP or GIF")
    if not (MIN_SIDE <= header.width <= MAX_SIDE and MIN_SIDE <= header.height <= MAX_SIDE):
        raise PictureRefused(f"{header.width}x{header.height} is out of bounds")
    if header.width * header.height > MAX_PIXELS:
        raise PictureRefused(f"{header.width}x{header.height} has too many pixels")
    return header


async def _picture(
    url: str, number: int, settings: Settings, folder: Path, size: tuple[int, int], exe: str
) -> Picture:
    image = await fetch_image(url, settings=settings, max_bytes=settings.render_picture_max_bytes)
    header = check_header(image.body)
    raw, part, final = (folder / f"{number}{suffix}" for suffix in (".raw", ".part.jpg", ".jpg"))
    await asyncio.to_thread(raw.write_bytes, image.body)
    width, height = size
    try:
        async with asyncio.timeout(DECODE_SECONDS):
            await run_ffmpeg(
                exe,
                ["-f", _DEMUXERS[header.format], "-max_pixels", str(MAX_PIXELS),
                 "-i", raw.name, "-frames:v", "1",
                 "-vf", f"scale={width}:{height}:force_original_aspect_ratio=increase"
                        f":flags=bicubic,crop={width}:{height},format=yuvj420p",
                 "-q:v", "3", "-f", "image2", "-update", "1", part.name],
                cwd=folder,
            )  # fmt: skip
        await asyncio.to_thread(os.replace, part, final)
    except (RenderError, TimeoutError) as error:
        raise PictureRefused(f"ffmpeg could not decode it: {error}") from error
    finally:
        await asyncio.to_thread(_remove, raw, part)
    return Picture(final, image.final_url)


#: The ffmpeg demuxer for each format: the header chose it, so ffmpeg does not guess again.
_DEMUXERS = {"jpeg": "jpeg_pipe", "png": "png_pipe", "webp": "webp_pipe", "gif": "gif"}


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class _PictureFinder(HTMLParser):
    """The picture URLs a page declares in its head, and those of its ``<img>`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.declared: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "meta":
            name = (values.get("property") or values.get("name") or "").strip().lower()
            if name in _META_NAMES and values.get("content"):
                self.declared.append(values["content"])
        elif tag == "link" and "image_src" in values.get("rel", "").lower().split():
            if values.get("href"):
                self.declared.append(values["href"])
        elif tag == "img":
            source = values.get("src") or values.get("data-src") or ""
            if source and not source.startswith("data:") and not _icon(values):
                self.images.append(source)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _icon(values: dict[str, str]) -> bool:
    """Whether an ``<img>``'s own width or height says it is smaller than a scene could use."""
    for name in ("width", "height"):
        digits = values.get(name, "").strip().removesuffix("px")
        if digits.isdigit() and int(digits) < MIN_SIDE * 2:
            return True
    return False
