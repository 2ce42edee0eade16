"""What a form says about itself: the enterprise it names, its 质量标杆名称, the write-up's title.

Names are compared after `match.normalise`, as subjects are, so that full-width brackets, spaces and line
breaks inside a name do not matter. Labels are compared without spaces and colons, because forms are typed
as `质量标杆名称`, `质量标杆名称：` or `质 量 标 杆 名 称`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from .match import normalise

if TYPE_CHECKING:  # the daemon reads only text here; the reader's imports (Pillow) stay in the child
    from .word import WordContent

TITLE_LABELS = ("质量标杆名称", "典型经验名称")
FIELD_LABELS = frozenset(
    {"申报单位", "单位名称", "企业名称", "统一社会信用代码", "通讯地址", "单位地址", "法定代表人", "联系人", "联系电话",
     "手机", "电子邮箱", "邮箱", "所属行业", "所属地市", "推荐单位", "申报日期", "营业收入", "从业人员", "申报类别"}
)  # fmt: skip
"""The form's other labels: beside a title label in a header row, they say the value is below, not right."""
_UNIT = re.compile(r"[(（][^)）]*[)）]$")
_HEADING_STYLES = ("heading", "title", "标题")
_SHORT_PARAGRAPH = 50
_ATTACHMENT_MARK = re.compile(r"^附件[0-9一二三四五六七八九十]*[:：]?$")


def names_in(text: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names the text contains, longest first; a name seen only inside a longer one found is left out."""
    compact = normalise(text)
    found = []
    for name, key in _longest_first(frozenset(names)):
        if key in compact:
            found.append(name)
            compact = compact.replace(key, "\x00")
    return tuple(found)


@lru_cache(maxsize=4)
def _longest_first(names: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """Each name with its normalised form, longest first: a roster of 5,000 is prepared once, not per form."""
    keyed = [(name, key) for name in names if (key := normalise(name))]
    return tuple(sorted(keyed, key=lambda pair: len(pair[1]), reverse=True))


SENDER_LABELS = ("申报单位", "单位名称", "企业名称")


def has_sender_field(text: str) -> bool:
    """Whether the text has the form's field for the enterprise's name: only then does naming nobody say
    something (a scanned form's text, or a cover page, names nothing at all)."""
    compact = normalise(text)
    return any(label in compact for label in SENDER_LABELS)


def benchmark_title(content: WordContent) -> str | None:
    """The 质量标杆名称 (or 典型经验名称): the table cell right of, else below, its label; else `label：value`."""
    for table in content.tables:
        for row_index, row in enumerate(table):
            for column, cell in enumerate(row):
                if _label(cell) not in TITLE_LABELS:
                    continue
                value = _right_of(row, column) or _below(table, row_index, column)
                if value:
                    return value
    for line in content.text.split("\n"):
        label, colon, value = line.replace("：", ":").partition(":")
        if colon and _label(label) in TITLE_LABELS and value.strip():
            return _tidy(value)
    return None


def first_heading(content: WordContent) -> str | None:
    """The write-up's title: the first paragraph styled as a title or heading, else the first short paragraph."""
    for paragraph in content.paragraphs:
        if paragraph.text.strip() and paragraph.style.lower().startswith(_HEADING_STYLES):
            return _tidy(paragraph.text)
    for paragraph in content.paragraphs:
        text = _tidy(paragraph.text)
        if text and len(text) <= _SHORT_PARAGRAPH and not _ATTACHMENT_MARK.match(normalise(text)):
            return text
    return None


def _label(cell: str) -> str:
    return normalise(cell).rstrip(":")


def _right_of(row: tuple[str, ...], column: int) -> str:
    """The first filled cell to the right; Word repeats a merged label cell, so a copy of the label is skipped,
    and another label there means a header row, whose values are below."""
    for cell in row[column + 1 :]:
        label = _label(cell)
        if _UNIT.sub("", label) in FIELD_LABELS:
            return ""
        if _tidy(cell) and label not in TITLE_LABELS:
            return _tidy(cell)
    return ""


def _below(table: tuple[tuple[str, ...], ...], row_index: int, column: int) -> str:
    if row_index + 1 < len(table) and column < len(table[row_index + 1]):
        return _tidy(table[row_index + 1][column])
    return ""


def _tidy(text: str) -> str:
    return " ".join(text.split())
