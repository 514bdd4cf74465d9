"""A page's script (app/pipeline/script.py, summary.py, scenes.py, pace.py): the page's title, its
headings as scene boundaries, and its own sentences, in order, fitted to the target duration.

The pages are real HTML extracted by trafilatura (`app.pipeline.extract`), not hand-made
sections; the narration of the summary is synthesized for real in test_url_script_stage.
"""

from __future__ import annotations

import pytest

from app.pipeline import pace, script, summary
from app.pipeline.extract import PageText, extract_text
from app.pipeline.fetch import FetchedPage
from app.pipeline.sentences import MAX_SEGMENT_CHARS, split_sentences
from tests.support.articles import LONG_SECTIONS, LONG_TITLE, long_article_html
from tests.support.pages import ARTICLE, ARTICLE_PARAGRAPHS, ARTICLE_TITLE

DEFAULT_WPM = pace.words_per_minute({}, {"speed": 1.0})
#: Every sentence of the long article, in order, with its section's heading.
ARTICLE_SENTENCES = [
    (heading, sentence)
    for heading, paragraphs in LONG_SECTIONS
    for paragraph in paragraphs
    for sentence in split_sentences(paragraph)
]


def _page(html: str) -> PageText:
    return extract_text(FetchedPage("http://x/", "http://x/", "text/html", html, "utf-8"))


def _script(
    html: str, target: int, wpm: float = DEFAULT_WPM, title: str = "The video's title"
) -> script.Script:
    return script.from_page(_page(html), title=title, target_seconds=target, wpm=wpm)


def _sentences(written: script.Script) -> list[tuple[str | None, str]]:
    return [
        (scene.heading, sentence)
        for scene in written.scenes
        for sentence in split_sentences(scene.text)
    ]


def test_the_default_pace_is_stated_and_follows_the_profile() -> None:
    assert DEFAULT_WPM == 216.9  # 1.165 x 175 + 13
    assert pace.words_per_minute({"rate": 120}, {"speed": 1.0}) == 152.8
    assert pace.words_per_minute({}, {"speed": 2.0}) == 420.8  # 350 words a minute, nominal
    assert pace.words_per_minute({"rate": 999}, {"speed": 2.0}) == 537.2  # clamped to 450


@pytest.mark.parametrize("target", [15, 30, 60, 90, 120, 180])
def test_the_summary_lasts_the_target_within_a_fifth(target: int) -> None:
    written = _script(long_article_html(), target)
    estimate = pace.estimate_ms(written.texts(), DEFAULT_WPM) / 1000
    assert 0.8 * target <= estimate <= 1.2 * target, estimate
    assert written.result(wpm=DEFAULT_WPM, target_seconds=target)["estimatedDurationMs"] == round(
        estimate * 1000
    )


@pytest.mark.parametrize("wpm", [pace.words_per_minute({}, {"speed": s}) for s in (0.5, 2.0)])
def test_a_slower_or_faster_voice_gets_fewer_or_more_words(wpm: float) -> None:
    written = _script(long_article_html(), 60, wpm)
    estimate = pace.estimate_ms(written.texts(), wpm) / 1000
    assert 48 <= estimate <= 72, estimate
    words = sum(pace.word_count(text) for text in written.texts())
    assert 0.8 * 60 * wpm / 60 <= words + 0.3 * len(written.texts()) * wpm / 60


@pytest.mark.parametrize(("html", "target"), [(long_article_html(), 600), (ARTICLE, 60)])
def test_a_page_shorter_than_the_target_is_kept_whole_not_padded(html: str, target: int) -> None:
    written = _script(html, target)
    paragraphs = (
        [p for _, ps in LONG_SECTIONS for p in ps] if html != ARTICLE else ARTICLE_PARAGRAPHS
    )
    assert " ".join(scene.text for scene in written.scenes) == " ".join(paragraphs)
    assert pace.estimate_ms(written.texts(), DEFAULT_WPM) < target * 1000


@pytest.mark.parametrize("target", [30, 60, 120])
def test_sentences_are_the_articles_own_in_document_order(target: int) -> None:
    chosen = _sentences(_script(long_article_html(), target))
    assert len(chosen) < len(ARTICLE_SENTENCES)
    places = [ARTICLE_SENTENCES.index(pair) for pair in chosen]  # each one, with its heading
    assert places == sorted(places)
    assert len(set(places)) == len(places)


@pytest.mark.parametrize("target", [30, 60, 120, 600])
def test_headings_are_scene_boundaries(target: int) -> None:
    written = _script(long_article_html(), target)
    for scene in written.scenes:
        # Sentences of one paragraph of its own section: no scene runs across a heading.
        paragraphs = dict(LONG_SECTIONS)[scene.heading]
        assert any(
            all(sentence in paragraph for sentence in split_sentences(scene.text))
            for paragraph in paragraphs
        ), scene
    sections = [scene.section for scene in written.scenes]
    assert sections == sorted(sections)
    if target >= 60:  # room for every section: each heading starts at least one scene
        assert [h for h, _ in LONG_SECTIONS] == list(
            dict.fromkeys(scene.heading for scene in written.scenes)
        )


@pytest.mark.parametrize("target", [15, 60, 600])
def test_scenes_are_one_or_two_sentences_that_fit_the_screen(target: int) -> None:
    written = _script(long_article_html(), target)
    assert all(1 <= len(split_sentences(s.text)) <= 2 for s in written.scenes)
    assert all(len(scene.text) <= MAX_SEGMENT_CHARS for scene in written.scenes)


def test_the_title_is_the_pages_and_comes_first() -> None:
    written = _script(long_article_html(), 60)
    result = written.result(wpm=DEFAULT_WPM, target_seconds=60)
    assert result["title"] == LONG_TITLE
    assert result["segments"][0] == {"index": 0, "text": LONG_TITLE, "kind": "title"}
    assert result["writer"] == "summary"
    assert (result["wordsPerMinute"], result["targetDurationSeconds"]) == (DEFAULT_WPM, 60)
    assert _script(ARTICLE, 60).title == ARTICLE_TITLE


def test_the_score_is_central_early_on_topic_sentences() -> None:
    sentences = script.sentences_of(_page(long_article_html()).sections)
    scored = {item.sentence.text: item for item in summary.score(sentences, LONG_TITLE)}
    lead = scored["The moon's gravity pulls on the whole Earth, but it pulls hardest on the side "
                  "that faces it and weakest on the far side."]  # fmt: skip
    later = scored["That difference in pull is the tidal force."]
    assert lead.position > later.position  # first of its section, and earlier
    assert later.reference == 0.7  # "That …" points back to the sentence before it
    assert lead.headings > 1.0  # uses "moon", its heading's word (and the title's "tide"?)
    assert lead.score > later.score
    # An aside that shares nothing with the rest is the least central sentence of all.
    aside = summary.Sentence("My neighbour's cat likes sardines.", 9, 99, True, True, None, 5)
    centrality = {
        item.sentence.text: item.centrality
        for item in summary.score([*sentences, aside], LONG_TITLE)
    }
    assert centrality[aside.text] == min(centrality.values()) < centrality[lead.sentence.text]


def test_sentences_end_where_sentences_end() -> None:
    text = (
        'It costs 3.5 dollars. Dr. Smith agreed, e.g. on Monday! J. S. Bach wrote it. "Why?" '
        '"Because."'
    )
    assert split_sentences(text) == [
        "It costs 3.5 dollars.",
        "Dr. Smith agreed, e.g. on Monday!",
        "J. S. Bach wrote it.",
        '"Why?"',
        '"Because."',
    ]


def test_a_sentence_too_long_for_the_screen_is_cut_into_scenes() -> None:
    long = ("Panels facing south collect the most light, " * 12).strip().rstrip(",") + "."
    html = f"<html><body><article><p>{long} A short one follows.</p></article></body></html>"
    written = _script(html, 600)
    assert all(len(scene.text) <= MAX_SEGMENT_CHARS for scene in written.scenes)
    assert (
        " ".join(s.text for s in written.scenes).split() == f"{long} A short one follows.".split()
    )
