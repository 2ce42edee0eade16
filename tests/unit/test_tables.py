"""Terminal tables (daemon/tables.py): a Chinese character takes two columns."""

from __future__ import annotations

import unicodedata

import pytest

from daemon.tables import display_width


def _columns(character: str) -> int:
    return 2 if unicodedata.east_asian_width(character) in "WF" else 1


def test_every_character_of_the_basic_plane_is_measured_as_unicode_says() -> None:
    wrong = [
        hex(code)
        for code in range(0x80, 0x10000)
        if not 0xD800 <= code < 0xE000 and display_width(chr(code)) != _columns(chr(code))
    ]

    assert wrong == []


@pytest.mark.parametrize(
    "text",
    ["济南明湖软件科技有限公司", "济南（2）ABC", "2026年11月05日 10:00", "缺少：申报书", "é中", "🏭工厂", "ＳＢ－１２"],
)
def test_a_cell_is_as_wide_as_its_characters(text: str) -> None:
    assert display_width(text) == sum(map(_columns, text))
