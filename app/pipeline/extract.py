"""The readable part of a fetched page: its main text and its title.

HTML goes through trafilatura, which keeps the article and drops navigation, footers, cookie
banners and scripts. When it finds nothing (a page too small or too unusual for its heuristics),
a plain extraction takes every visible text block instead. Plain-text pages are used as they are.

The text comes back as paragraphs separated by blank lines, the shape `split_script` expects (a
paragraph always starts a new narration segment). A page with no text at all is refused with
`NoReadableText`, a `FetchError`, so the SCRIPT stage reports it like any fetch failure.

Extraction is CPU work (an lxml parse of up to ``STUDIO_FETCH_MAX_BYTES``), so `read_page` runs it
in a thread: the worker's event loop keeps renewing the job's lease meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import trafilatura
from trafilatura.settings import Document

from app.pipeline.fetch import FetchedPage, FetchError, fetch_page
from app.pipeline.pictures import page_picture_urls
from app.settings import Settings

logger = logging.getLogger(__name__)

#: Elements whose content is never narration.
_HIDDEN = frozenset(
    {
        "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
        "nav", "select", "button", "textarea",
    }
)  # fmt: skip
#: Elements that end a paragraph of text.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_BULLET = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s+")


class NoReadableText(FetchError):
    def __init__(self) -> None:
        super().__init__("The page has no readable text.")


@dataclass(frozen=True)
class PageText:
    title: str | None
    text: str  # paragraphs separated by blank lines
    url: str  # where the text came from (after redirects)
    #: The page's own pictures, best first (`app.pipeline.pictures.page_picture_urls`).
    pictures: tuple[str, ...] = ()


async def read_page(url: str, *, settings: Settings) -> PageText:
    """Fetch ``url`` safely (`fetch_page`) and extract its readable text; `FetchError` if the
    page cannot be fetched or holds no text."""
    page = await fetch_page(url, settings=settings)
    return await asyncio.to_thread(extract_text, page)


def extract_text(page: FetchedPage) -> PageText:
    """The title and main text of ``page``; `NoReadableText` when there is none."""
    if page.is_html:
        title, text = _from_html(page.text, page.final_url)
    else:
        title, text = None, page.text
    paragraphs = _paragraphs(text)
    if paragraphs and title and _same_words(paragraphs[0], title):
        paragraphs = paragraphs[1:]  # the page's heading, already the title segment
    if not paragraphs:
        raise NoReadableText()
    pictures = tuple(page_picture_urls(page.text, page.final_url)) if page.is_html else ()
    return PageText(
        title=title, text="\n\n".join(paragraphs), url=page.final_url, pictures=pictures
    )


def _from_html(html: str, url: str) -> tuple[str | None, str]:
    title: str | None = None
    text = ""
    try:
        document = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
        )
    except Exception:  # a page trafilatura cannot parse is still read by the fallback
        logger.warning("trafilatura could not extract %s", url, exc_info=True)
        document = None
    if isinstance(document, Document):
        title = _clean(document.title or "") or None
        text = document.text or ""
    if not text.strip():
        fallback = _PlainText()
        fallback.feed(html)
        fallback.close()
        title = title or _clean(fallback.title) or None
        text = "\n".join(fallback.blocks)
    return title, text


def _paragraphs(text: str) -> list[str]:
    """Each non-blank line a paragraph, whitespace collapsed and list bullets dropped."""
    lines = (_BULLET.sub("", _clean(line)) for line in text.splitlines())
    return [line for line in lines if line]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _same_words(a: str, b: str) -> bool:
    return a.casefold().rstrip(".:!?") == b.casefold().rstrip(".:!?")


class _PlainText(HTMLParser):
    """Every visible text block of a page, and its ``<title>``: the fallback extraction."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HIDDEN:
            self._hidden += 1
        if tag in _BLOCKS:
            self._end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in _BLOCKS:
            self._end_block()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:  # <br/>, <hr/>; a self-closed <script/> hides nothing
            self._end_block()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._hidden:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._end_block()

    def _end_block(self) -> None:
        text = _clean("".join(self._current))
        if text:
            self.blocks.append(text)
        self._current = []
