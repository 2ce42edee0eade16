"""Text tables for a terminal, where a Chinese character is two columns wide and text from mail is shown with
its control characters escaped (text.for_terminal)."""

from __future__ import annotations

import functools
import re
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


_ELSE_THAN_ASCII_OR_COMMON_WIDE = re.compile(
    "[^\x00-\x7f\u3000-\u303e\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7a3\uff01-\uff60]"
)
"""Every character of these blocks is two columns wide (CJK punctuation, kana, the common ideographs,
Hangul, fullwidth forms) and three bytes of UTF-8."""


def display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    if _ELSE_THAN_ASCII_OR_COMMON_WIDE.search(text) is None:
        # a name in Chinese, measured without looking at each character: each wide one is 2 bytes more
        return len(text) + (len(text.encode()) - len(text)) // 2
    return sum(map(_character_width, text))


@functools.cache
def _character_width(character: str) -> int:
    """Remembered: a roster of thousands of Chinese names repeats a few thousand characters."""
    return 2 if unicodedata.east_asian_width(character) in "WF" else 1
