"""Text tables for a terminal, where a Chinese character is two columns wide and text from mail is shown with
its control characters escaped (text.for_terminal)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from .text import for_terminal


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns aligned for a terminal, where a Chinese character is two columns wide."""
    shown = [[(cell, display_width(cell)) for cell in map(for_terminal, row)] for row in rows]
    widths = [max(row[i][1] for row in shown) for i in range(len(shown[0]))]
    lines = (
        "  ".join(cell + " " * (w - width) for (cell, width), w in zip(row, widths, strict=True)).rstrip()
        for row in shown
    )
    print("\n".join(lines))


def display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
