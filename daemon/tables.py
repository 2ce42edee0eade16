"""Text tables for a terminal, where a Chinese character is two columns wide and text from mail is shown with
its control characters escaped (text.for_terminal)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from .text import for_terminal


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns aligned for a terminal, where a Chinese character is two columns wide."""
    shown = [tuple(map(for_terminal, row)) for row in rows]
    widths = [max(display_width(row[i]) for row in shown) for i in range(len(shown[0]))]
    for row in shown:
        print("  ".join(cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip())


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
