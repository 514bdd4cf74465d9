"""A long article with headings, for the script tests: served by `tests.support.pages` as
``/long-article`` (HTML, inside navigation and a footer) and read as sections by the summariser.

`LONG_SECTIONS` is the article as written: (heading, paragraphs). About 800 words, some four
minutes of narration, so a one-minute script has to choose.
"""

from __future__ import annotations

LONG_TITLE = "How the tides work"
LONG_SECTIONS: list[tuple[str | None, list[str]]] = [
    (
        None,
        [
            "Twice a day the sea climbs up the beach and twice a day it slips away again. "
            "The rhythm is so regular that harbours print tide tables a year ahead. "
            "Behind it are the moon, the sun and the shape of the ocean basins.",
            "This article explains where the tides come from, why they change through the "
            "month, and why two harbours a few miles apart can see very different tides.",
        ],
    ),
    (
        "The pull of the moon",
        [
            "The moon's gravity pulls on the whole Earth, but it pulls hardest on the side that "
            "faces it and weakest on the far side. "
            "That difference in pull is the tidal force. "
            "It stretches the oceans into a bulge towards the moon and a second bulge on the "
            "opposite side of the planet.",
            "As the Earth turns, a coast passes through both bulges every day. "
            "That is why most places see two high tides and two low tides roughly every "
            "twenty-four hours and fifty minutes. "
            "The extra fifty minutes come from the moon moving along its orbit while the Earth "
            "spins.",
            "The tidal force is tiny compared with the Earth's own gravity. "
            "It lifts the open ocean by well under a metre. "
            "The large tides seen on some coasts come from how that small rise is amplified "
            "by the sea floor and the shape of the shore.",
        ],
    ),
    (
        "The part the sun plays",
        [
            "The sun is far more massive than the moon, but it is also much farther away. "
            "Because the tidal force weakens with the cube of the distance, the sun's tidal "
            "effect is a little under half the moon's.",
            "When the sun, the moon and the Earth line up, at new moon and full moon, their "
            "tidal forces add together. "
            "The result is a spring tide, with higher high tides and lower low tides. "
            "The name has nothing to do with the season; it comes from the water springing up.",
            "When the sun and the moon stand at right angles to each other, at the quarter "
            "moons, their forces partly cancel. "
            "Those weaker tides are called neap tides. "
            "Spring and neap tides follow each other about once a week, in step with the "
            "phases of the moon.",
        ],
    ),
    (
        "Why coasts differ",
        [
            "If the Earth were covered by one deep ocean, the tides would be small and simple. "
            "Real oceans are broken up by continents, so the tide behaves like water sloshing "
            "in a set of basins. "
            "Each basin has its own natural period of sloshing.",
            "Where a basin's period is close to the tidal rhythm, the tide is amplified. "
            "The Bay of Fundy in Canada is the famous case. "
            "Its tides can rise and fall by sixteen metres, the height of a five storey "
            "building.",
            "In other places the tides almost vanish. "
            "The Mediterranean Sea is nearly closed off from the Atlantic, and its tides are "
            "mostly a few tens of centimetres. "
            "Some points in the oceans, called amphidromic points, have no tide at all, while "
            "the tide wave rotates around them.",
            "The shape of the coast matters too. "
            "A funnel-shaped estuary squeezes the incoming tide into a narrower channel, and "
            "the water piles up. "
            "In a few rivers the rising tide arrives as a single breaking wave, called a tidal "
            "bore, that surfers ride for miles inland.",
        ],
    ),
    (
        "Predicting the tides",
        [
            "Tide tables are not made by simulating the ocean. "
            "Instead, a gauge records the water level in a harbour for a year or more. "
            "The record is split into dozens of regular rhythms, each tied to a motion of the "
            "moon or the sun.",
            "Once those rhythms are known for a harbour, they can be added up for any future "
            "date. "
            "Lord Kelvin built a brass machine in the nineteenth century that did this sum "
            "with pulleys and a chain. "
            "Today the same sum takes a computer a fraction of a second.",
            "Predictions are very good for the astronomical tide, but the weather can still "
            "surprise. "
            "Strong onshore winds and low air pressure can raise the sea well above the "
            "predicted level. "
            "That storm surge is the main cause of coastal flooding.",
        ],
    ),
    (
        "Tides and life",
        [
            "The strip of shore between high and low water is one of the harshest places to "
            "live. "
            "Animals there are covered by salt water and then left in the sun and wind twice "
            "a day. "
            "Barnacles, mussels and limpets close up tight to wait for the water to return.",
            "Many creatures time their lives by the tides. "
            "Some crabs release their larvae on the highest spring tides, which carry the young "
            "far out to sea. "
            "Grunion fish in California lay their eggs in the sand at the peak of a spring "
            "tide, where the next high water will not reach them for two weeks.",
            "Tides also shape human life. "
            "Fishing fleets leave on the ebb and return on the flood, and ports are dredged "
            "and built around the tidal range. "
            "A few power stations now turn the flow of the tide into electricity.",
        ],
    ),
]


def long_article_html() -> str:
    """The article as a page: a site's navigation, the article with its headings, a footer."""
    body = f"<h1>{LONG_TITLE}</h1>"
    for heading, paragraphs in LONG_SECTIONS:
        if heading is not None:
            body += f"<h2>{heading}</h2>"
        body += "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{LONG_TITLE} | Ocean Facts</title></head>
<body>
  <nav><a href="/">Home</a> <a href="/topics">Topics</a> <a href="/shop">Shop</a></nav>
  <article>{body}</article>
  <footer>Copyright 2026 Ocean Facts. Cookie settings. Subscribe to our newsletter.</footer>
</body>
</html>
"""


def long_article_words() -> int:
    return sum(len(p.split()) for _, paragraphs in LONG_SECTIONS for p in paragraphs)
