"""The readable part of a fetched page: its main text, its title and its headings.

HTML goes through trafilatura, which keeps the article and drops navigation, footers, cookie
banners and scripts. When it finds nothing (a page too small or too unusual for its heuristics),
a plain extraction takes every visible text block instead. Plain-text pages are used as they are.

The text comes back twice: as paragraphs separated by blank lines (``text``), and as
``sections``, the article cut at its own ``h1`` to ``h3`` headings (trafilatura keeps a heading
inside the article as ``<head rend="h2">``; the fallback reads the tags themselves). Smaller
headings are neither boundaries nor narration. The title is the page's own (trafilatura's
metadata, else ``<title>``), cleaned of a site name after a separator (`clean_title`). A page
with no text at all is refused with `NoReadableText`, a `FetchError`, so the SCRIPT stage
reports it like any fetch failure.

Extraction is CPU work (an lxml parse of up to ``STUDIO_FETCH_MAX_BYTES``), so `read_page` runs it
in a thread: the worker's event loop keeps renewing the job's lease meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

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
#: The headings that cut an article into sections (scene boundaries for the script).
SECTION_HEADINGS = frozenset({"h1", "h2", "h3"})
_MINOR_HEADINGS = frozenset({"h4", "h5", "h6"})
#: What separates a page's title from its site's name: "Title | Site", "Title - Site".
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|\u2013\u2014\u00b7\u2022]|-|::)\s+")
TITLE_MAX = 200  # as a video's title (app.validation.TITLE_MAX)


class NoReadableText(FetchError):
    def __init__(self) -> None:
        super().__init__("The page has no readable text.")


@dataclass(frozen=True)
class Section:
    """Paragraphs under one of the article's headings (``None``: before the first heading)."""

    heading: str | None
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class PageText:
    title: str | None
    text: str  # paragraphs separated by blank lines
    url: str  # where the text came from (after redirects)
    sections: tuple[Section, ...] = ()  # the same paragraphs, cut at h1-h3 headings
    #: The page's own pictures, best first (`app.pipeline.pictures.page_picture_urls`).
    pictures: tuple[str, ...] = ()


async def read_page(url: str, *, settings: Settings) -> PageText:
    """Fetch ``url`` safely (`fetch_page`) and extract its readable text; `FetchError` if the
    page cannot be fetched or holds no text."""
    page = await fetch_page(url, settings=settings)
    return await asyncio.to_thread(extract_text, page)


def extract_text(page: FetchedPage) -> PageText:
    """The title, main text and sections of ``page``; `NoReadableText` when there is none."""
    if page.is_html:
        title, text, blocks = _from_html(page.text, page.final_url)
    else:
        title, text = None, page.text
        blocks = [("p", line) for line in text.splitlines()]
    paragraphs = _paragraphs(text)
    if paragraphs and title and _same_words(paragraphs[0], title):
        paragraphs = paragraphs[1:]  # the page's heading, already the title segment
    if not paragraphs:
        raise NoReadableText()
    sections = _sections(blocks, title) or (Section(None, tuple(paragraphs)),)
    pictures = tuple(page_picture_urls(page.text, page.final_url)) if page.is_html else ()
    return PageText(
        title=title,
        text="\n\n".join(paragraphs),
        url=page.final_url,
        sections=sections,
        pictures=pictures,
    )


def clean_title(raw: str, *, site_name: bool = True) -> str | None:
    """A page title in one line of at most `TITLE_MAX` characters; with ``site_name``, without
    the site's name ("How tides work | Ocean Facts" -> "How tides work"): of the parts a
    separator cuts it into, the first, unless a later one is more than twice as long (the
    site's name first: "Ocean Facts - How the moon moves the tides"). trafilatura's titles come
    without it already."""
    title = _clean(raw)
    parts = [part for part in _TITLE_SEPARATOR.split(title) if part.strip()]
    if site_name and len(parts) > 1:
        title = max(parts, key=len) if len(parts[0]) < max(map(len, parts[1:])) / 2 else parts[0]
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX + 1].rsplit(" ", 1)[0].rstrip(",;:-") or title[:TITLE_MAX]
    return title or None


#: A block of extracted text: its tag (``"p"`` or ``"h1"``…``"h6"``) and its text.
_Block = tuple[str, str]


def _from_html(html: str, url: str) -> tuple[str | None, str, list[_Block]]:
    title: str | None = None
    text = ""
    blocks: list[_Block] = []
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
        title = clean_title(document.title or "", site_name=False)
        text = document.text or ""
        blocks = _body_blocks(document.body)
    if not text.strip():
        fallback = _PlainText()
        fallback.feed(html)
        fallback.close()
        title = title or clean_title(fallback.title)
        text = "\n".join(block for _, block in fallback.blocks)
        blocks = fallback.blocks
    return title, text, blocks


def _body_blocks(body: Any) -> list[_Block]:
    """trafilatura's ``<body>``: each heading, and each line of a paragraph, list item or
    quote, a block (a line break is a paragraph break, as in its text output)."""
    if body is None:
        return []
    for line_break in body.iter("lb"):
        line_break.tail = "\n" + (line_break.tail or "")
    blocks: list[_Block] = []
    _add_blocks(body, blocks)
    return blocks


def _add_blocks(container: Any, blocks: list[_Block]) -> None:
    def add(tag: str, text: str | None) -> None:
        blocks.extend((tag, line) for line in (text or "").splitlines())

    add("p", container.text)
    for element in container:
        if element.tag in ("div", "body", "section"):  # its baseline extraction nests them
            _add_blocks(element, blocks)
        elif element.tag == "head":
            add(str(element.get("rend") or "h2"), "".join(element.itertext()))
        elif element.tag == "list":
            for item in element.iter("item"):
                add("p", "".join(item.itertext()))
        else:
            add("p", "".join(element.itertext()))
        add("p", element.tail)


def _sections(blocks: list[_Block], title: str | None) -> tuple[Section, ...]:
    """``blocks`` cut at each h1-h3 heading; a first block that repeats the title is dropped,
    and so are smaller headings (they label a list or a step, and are no sentence)."""
    cleaned = [(tag, _BULLET.sub("", _clean(text))) for tag, text in blocks]
    cleaned = [(tag, text) for tag, text in cleaned if text and tag not in _MINOR_HEADINGS]
    if cleaned and title and _same_words(cleaned[0][1], title):
        cleaned = cleaned[1:]
    sections: list[Section] = []
    heading: str | None = None
    paragraphs: list[str] = []
    for tag, text in cleaned:
        if tag in SECTION_HEADINGS:
            if paragraphs:
                sections.append(Section(heading, tuple(paragraphs)))
            heading, paragraphs = text, []
        else:
            paragraphs.append(text)
    if paragraphs:
        sections.append(Section(heading, tuple(paragraphs)))
    return tuple(sections)


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
        self.blocks: list[_Block] = []  # (tag, text): "h1"…"h6" for headings, else "p"
        self._current: list[str] = []
        self._heading: str | None = None
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HIDDEN:
            self._hidden += 1
        if tag in _BLOCKS:
            self._end_block()
        if tag in SECTION_HEADINGS | _MINOR_HEADINGS:
            self._heading = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in _BLOCKS:
            self._end_block()
        if tag == self._heading:
            self._heading = None

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
            self.blocks.append((self._heading or "p", text))
        self._current = []
