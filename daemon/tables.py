"""Text tables for a terminal, where a Chinese character is two columns wide."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns aligned for a terminal, where a Chinese character is two columns wide."""
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip())


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
