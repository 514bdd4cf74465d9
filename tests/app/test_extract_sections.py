"""A page read in sections (app/pipeline/extract.py): its own title, cleaned of the site's name,
and its article cut at its own h1-h3 headings, smaller headings dropped."""

from __future__ import annotations

from app.pipeline.extract import PageText, _PlainText, clean_title, extract_text
from app.pipeline.fetch import FetchedPage
from tests.support.articles import LONG_SECTIONS, LONG_TITLE, long_article_html
from tests.support.pages import ARTICLE, ARTICLE_PARAGRAPHS, ARTICLE_TITLE


def _page(html: str, content_type: str = "text/html") -> PageText:
    return extract_text(FetchedPage("http://x/", "http://x/", content_type, html, "utf-8"))


def test_the_page_is_read_in_sections_at_its_headings() -> None:
    page = _page(long_article_html())
    assert page.title == LONG_TITLE  # not "… | Ocean Facts"
    assert [section.heading for section in page.sections] == [h for h, _ in LONG_SECTIONS]
    assert [list(section.paragraphs) for section in page.sections] == [p for _, p in LONG_SECTIONS]


def test_a_page_without_headings_is_one_section() -> None:
    page = _page(ARTICLE)
    assert page.title == ARTICLE_TITLE
    assert [(s.heading, list(s.paragraphs)) for s in page.sections] == [(None, ARTICLE_PARAGRAPHS)]


def test_smaller_headings_are_neither_boundaries_nor_narration() -> None:
    html = (
        "<html><head><title>Bread</title></head><body><article><h1>Bread</h1>"
        "<p>Bread is flour, water, salt and time, mixed and left to rise slowly.</p>"
        "<h2>Kneading</h2><p>Kneading builds the gluten that holds the gas in the dough.</p>"
        "<h4>Tip</h4><p>Wet hands keep the dough from sticking to them while you work.</p>"
        "<h3>Resting</h3><p>A rested dough is easier to shape and rises more evenly.</p>"
        "</article></body></html>"
    )
    sections = [(s.heading, list(s.paragraphs)) for s in _page(html).sections]
    assert sections == [
        (None, ["Bread is flour, water, salt and time, mixed and left to rise slowly."]),
        (
            "Kneading",
            [
                "Kneading builds the gluten that holds the gas in the dough.",
                "Wet hands keep the dough from sticking to them while you work.",
            ],
        ),
        ("Resting", ["A rested dough is easier to shape and rises more evenly."]),
    ]


def test_text_between_headings_of_a_small_page_is_kept() -> None:
    # Too small for trafilatura's article heuristics: its baseline extraction keeps the text
    # as the tails of the headings, in one <div>.
    html = "<html><body><div><h2>Tides</h2>The sea rises.<h3>Why</h3>The moon.</div></body></html>"
    page = _page(html)
    assert page.title == "Tides"  # trafilatura's, from the first heading: not said twice
    assert [(s.heading, list(s.paragraphs)) for s in page.sections] == [
        (None, ["The sea rises."]),
        ("Why", ["The moon."]),
    ]


def test_the_fallback_extraction_tags_the_headings_it_reads() -> None:
    # What reads a page trafilatura finds nothing in (or fails on): every visible block.
    parser = _PlainText()
    parser.feed(
        "<title>Tides | Sea</title><nav>Home</nav><h2>Tides <b>today</b></h2><p>The sea rises."
        "</p><h5>Note</h5><p>Twice a day.</p><h3>Why</h3><div>The moon.<br>And the sun.</div>"
    )
    parser.close()
    assert parser.title == "Tides | Sea"
    assert parser.blocks == [
        ("h2", "Tides today"),
        ("p", "The sea rises."),
        ("h5", "Note"),
        ("p", "Twice a day."),
        ("h3", "Why"),
        ("p", "The moon."),
        ("p", "And the sun."),
    ]


def test_a_plain_text_page_is_one_section_of_its_lines() -> None:
    page = _page("Tides.\n\nThe moon pulls the sea.\n", "text/plain")
    assert [(s.heading, list(s.paragraphs)) for s in page.sections] == [
        (None, ["Tides.", "The moon pulls the sea."])
    ]


def test_a_page_titled_only_by_its_title_tag_loses_the_site_name() -> None:
    html = "<html><head><title>Why the sky is blue | Sky Facts</title></head><body>" + (
        "<p>Sunlight is scattered by the air. Blue light is scattered the most.</p></body></html>"
    )
    assert _page(html).title == "Why the sky is blue"


def test_a_title_keeps_its_words_and_fits_a_video_title() -> None:
    assert clean_title("Ocean Facts - How the moon moves the tides") == (
        "How the moon moves the tides"
    )
    assert clean_title("  How   tides\nwork  ") == "How tides work"
    assert clean_title("A | B", site_name=False) == "A | B"
    long = clean_title("word " * 100)
    assert long is not None
    assert len(long) <= 200
    assert long.endswith("word")
    assert clean_title("   ") is None
