"""An extractive summary: the article's own sentences that best carry it, fitted to a length.

Each sentence gets a score, the product of three factors, every one of which can be read off:

* **centrality** (TextRank): sentences are TF-IDF vectors of their content words (lower-cased,
  stop words dropped, a plural ``s`` stripped); two sentences are linked by the cosine of their
  vectors, each keeping its `NEIGHBOURS` strongest links; PageRank over that graph (damping
  0.85) gives the sentences the rest of the article keeps coming back to. Scaled so the most
  central sentence is 1.
* **position**: ``1 + 0.15`` for the first sentence of a paragraph, ``+ 0.15`` more for the first
  paragraph of a section, ``+ 0.2 * (1 - place / count)`` for being early in the article
  (articles lead with what matters).
* **headings**: ``1 + 0.5 *`` the share of the section heading's and the title's content words
  the sentence uses (a sentence that says what its heading announces is on topic).

A sentence of fewer than 6 words (a caption, "Read more.") counts 0.6 of its score, one of more
than 45 words (hard to follow when heard) 0.8, and one that opens by pointing back ("That is
why…", "These…", "However…") 0.7: heard without the sentence before, it loses its meaning.

`choose` then spends a budget of milliseconds: first the best sentence of each section, best
section first, so that the headings survive as scene boundaries; then the rest by score,
skipping a sentence that says again what a chosen one said (cosine above `REDUNDANT`) and any
that would overrun. Every sentence is costed as if it were a scene of its own (its words at the
narration's pace plus a pause), slightly over what scenes of two sentences take, so the
estimate errs short; when what is left of the budget is worth more than the overrun of the
next sentence, that one is taken too (the overrun is then at most `OVERRUN` of the budget).
The chosen sentences come back in document order. An article that fits is kept whole, never
padded.

Only the first `MAX_SENTENCES` sentences of a page are considered (about 30,000 words: a page
longer than that is rarely one article), which bounds the work: half a second on one core for
the largest page (``bench/bench_script.py``).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from app.pipeline import pace

MAX_SENTENCES = 2000
_Vector = dict[str, float]  # term -> weight, unit length
NEIGHBOURS = 20
DAMPING = 0.85
REDUNDANT = 0.6
OVERRUN = 0.1

_POINTS_BACK = re.compile(
    r"[\"'\u201c(]*(?:this|that|these|those|it|its|they|their|them|such|however|but|so|"
    r"then|also|instead|he|she|his|her)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t one two also may might must shall like get got much many""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Sentence:
    text: str
    section: int
    paragraph: int  # which paragraph of the article, counting from 0
    first_in_paragraph: bool
    first_paragraph_of_section: bool
    heading: str | None
    words: int


@dataclass(frozen=True)
class Scored:
    """A sentence's score and its factors (see the module docstring)."""

    sentence: Sentence
    centrality: float
    position: float
    headings: float
    length: float
    reference: float

    @property
    def score(self) -> float:
        return self.centrality * self.position * self.headings * self.length * self.reference


def score(sentences: Sequence[Sentence], title: str | None) -> list[Scored]:
    """Every sentence scored, in the given order."""
    return _score(sentences, title, _tfidf([_terms(sentence.text) for sentence in sentences]))


def _score(
    sentences: Sequence[Sentence], title: str | None, vectors: list[_Vector]
) -> list[Scored]:
    centrality = _textrank(vectors)
    top = max(centrality, default=0.0) or 1.0
    title_terms = set(_terms(title or ""))
    count = len(sentences)
    scored: list[Scored] = []
    for place, sentence in enumerate(sentences):
        position = 1.0 + 0.2 * (1 - place / count)
        position += 0.15 * sentence.first_in_paragraph
        position += 0.15 * (sentence.first_in_paragraph and sentence.first_paragraph_of_section)
        topic = title_terms | set(_terms(sentence.heading or ""))
        used = len(topic & set(_terms(sentence.text))) / len(topic) if topic else 0.0
        length = 0.6 if sentence.words < 6 else 0.8 if sentence.words > 45 else 1.0
        reference = 0.7 if _POINTS_BACK.match(sentence.text) else 1.0
        scored.append(
            Scored(sentence, centrality[place] / top, position, 1 + 0.5 * used, length, reference)
        )
    return scored


def choose(
    sentences: Sequence[Sentence], *, title: str | None, budget_ms: int, wpm: float
) -> list[Sentence]:
    """The sentences that best fill ``budget_ms`` of narration at ``wpm``, in document order."""
    sentences = sentences[:MAX_SENTENCES]

    def cost(sentence: Sentence) -> int:
        return pace.speaking_ms(sentence.words, wpm) + pace.PAUSE_MS

    if sum(map(cost, sentences)) <= budget_ms:
        return list(sentences)
    vectors = _tfidf([_terms(sentence.text) for sentence in sentences])
    scored = sorted(
        enumerate(_score(sentences, title, vectors)), key=lambda item: item[1].score, reverse=True
    )
    chosen: set[int] = set()
    spent = 0

    def take(index: int) -> None:
        nonlocal spent
        chosen.add(index)
        spent += cost(sentences[index])

    sections_done: set[int] = set()
    for index, item in scored:  # the best sentence of each section, best section first
        section = item.sentence.section
        if section not in sections_done and spent + cost(item.sentence) <= budget_ms:
            sections_done.add(section)
            take(index)
    for index, item in scored:
        if index in chosen or spent + cost(item.sentence) > budget_ms:
            continue
        if any(_cosine(vectors[index], vectors[other]) > REDUNDANT for other in chosen):
            continue
        take(index)
    left = budget_ms - spent
    overruns = [
        (cost(item.sentence) - left, index)
        for index, item in scored
        if index not in chosen and 0 < cost(item.sentence) - left <= budget_ms * OVERRUN
    ]
    if overruns and min(overruns)[0] < left:
        take(min(overruns)[1])
    return [sentences[index] for index in sorted(chosen)]


# --- TF-IDF and TextRank ------------------------------------------------------------------


def _terms(text: str) -> list[str]:
    words = (word.lower().replace("\u2019", "'") for word in _WORD.findall(text))
    return [_stem(word) for word in words if word not in _STOP_WORDS and len(word) > 1]


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-3] + "y" if word.endswith("ies") else word[:-1]
    return word


def _tfidf(documents: list[list[str]]) -> list[_Vector]:
    """Unit-length TF-IDF vectors (smoothed IDF: ``ln((1 + n) / (1 + df)) + 1``)."""
    frequency: Counter[str] = Counter(term for terms in documents for term in set(terms))
    count = len(documents)
    vectors: list[_Vector] = []
    for terms in documents:
        weights = {
            term: tf * (math.log((1 + count) / (1 + frequency[term])) + 1)
            for term, tf in Counter(terms).items()
        }
        norm = math.sqrt(sum(weight * weight for weight in weights.values())) or 1.0
        vectors.append({term: weight / norm for term, weight in weights.items()})
    return vectors


def _cosine(a: _Vector, b: _Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(weight * b.get(term, 0.0) for term, weight in a.items())


def _textrank(vectors: list[_Vector], iterations: int = 50) -> list[float]:
    """PageRank over the sentences' similarity graph, each keeping its strongest links."""
    count = len(vectors)
    if count == 0:
        return []
    postings: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)
    for index, vector in enumerate(vectors):
        for term, weight in vector.items():
            postings[term].append((index, weight))
    links: list[list[tuple[int, float]]] = []
    for index, vector in enumerate(vectors):
        dots: defaultdict[int, float] = defaultdict(float)
        for term, weight in vector.items():
            for other, other_weight in postings[term]:
                if other != index:
                    dots[other] += weight * other_weight
        links.append(sorted(dots.items(), key=lambda link: link[1], reverse=True)[:NEIGHBOURS])
    ranks = [1.0 / count] * count
    for _ in range(iterations):
        spread = [0.0] * count
        dangling = 0.0
        for index, outgoing in enumerate(links):
            total = sum(weight for _, weight in outgoing)
            if total == 0:
                dangling += ranks[index]
                continue
            for other, weight in outgoing:
                spread[other] += ranks[index] * weight / total
        base = (1 - DAMPING) / count + DAMPING * dangling / count
        new = [base + DAMPING * value for value in spread]
        converged = sum(abs(a - b) for a, b in zip(new, ranks, strict=True)) < 1e-9
        ranks = new
        if converged:
            break
    return ranks
