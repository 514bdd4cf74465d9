"""Breaking text into lines of at most a given width, between words."""

from __future__ import annotations


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap; a word longer than a line (a URL, say) is cut."""
    lines: list[str] = []
    for word in text.split():
        while len(word) > width:
            lines.append(word[:width])
            word = word[width:]
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
