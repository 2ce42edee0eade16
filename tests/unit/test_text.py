"""Text from mail made safe to show (daemon/text.py, issue 8, finding 5): on a terminal, in a workbook cell, in
an email we send, as a file name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from daemon.text import CELL_MAX_CHARS, NAME_MAX_BYTES, file_name, for_cell, for_email, for_terminal

ANSI = "济南明湖\x1b[31m红字\x1b[0m软件"
CONTROL_BYTES = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("济南明湖软件科技有限公司", "济南明湖软件科技有限公司"),
        (ANSI, "济南明湖\\x1b[31m红字\\x1b[0m软件"),
        ("名称\x0b来自Word", "名称\\x0b来自Word"),
        ("a\x00b", "a\\x00b"),
        ("tab\there\nnew line\r", "tab\\there\\nnew line\\r"),
        ("\x9b31m", "\\x9b31m"),  # the one-character CSI
        ("申报书\u202excod.exe", "申报书\\u202excod.exe"),
        ("\u2066isolate\u2069 \u200e\u200f\u061c", "\\u2066isolate\\u2069 \\u200e\\u200f\\u061c"),
        ("line\u2028separator\u2029", "line\\u2028separator\\u2029"),
        ("gbk \udcd6\udcd0", "gbk \\udcd6\\udcd0"),
        ("\ufffe\uffff", "\\ufffe\\uffff"),
        ("全角（）　、zero\u200bwidth", "全角（）　、zero\u200bwidth"),  # harmless: shown as they are
    ],
)
def test_for_terminal_shows_every_control_character_as_an_escape(text: str, shown: str) -> None:
    assert for_terminal(text) == shown


def test_for_terminal_leaves_nothing_a_terminal_acts_on_and_encodes_as_utf8() -> None:
    text = "".join(chr(c) for c in range(0x30000) if c not in range(0xD800, 0xDC80))

    shown = for_terminal(text + "\udcd6")

    assert not CONTROL_BYTES & set(shown)
    shown.encode("utf-8")  # no lone surrogate left


def test_for_terminal_changes_no_printable_character() -> None:
    """It returns printable text as it is, without looking further: none of it may need an escape."""
    printable = "".join(character for code in range(0x110000) if (character := chr(code)).isprintable())

    assert for_terminal(printable + "\x00") == printable + "\\x00"


def test_for_email_keeps_tabs_and_line_breaks_but_escapes_the_rest() -> None:
    assert for_email("a\tb\nc\r\x0b\x00\x1b[1m\u202e") == "a\tb\nc\\r\\x0b\\x00\\x1b[1m\\u202e"


@pytest.mark.parametrize("text", ["名称\x0b来自Word", "a\x00b", ANSI, "gbk \udcd6", "\ufffe"])
def test_for_cell_gives_text_a_workbook_takes(text: str) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([for_cell(text)])
    buffer = io.BytesIO()

    workbook.save(buffer)

    read = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert read is not None
    assert read["A1"].value == for_cell(text) == for_email(text)


def test_for_cell_cuts_what_excel_would_not_show() -> None:
    assert for_cell("名" * CELL_MAX_CHARS) == "名" * CELL_MAX_CHARS
    assert for_cell("名" * (CELL_MAX_CHARS + 1)) == "名" * (CELL_MAX_CHARS - 1) + "…"
    assert len(for_cell("\x00" * CELL_MAX_CHARS)) == CELL_MAX_CHARS


@pytest.mark.parametrize("text", ["😀" * CELL_MAX_CHARS, "名" + "😀" * CELL_MAX_CHARS, "😀" * (CELL_MAX_CHARS // 2)])
def test_for_cell_counts_as_excel_does_and_the_summary_writer_keeps_the_whole_cell(text: str) -> None:
    """Excel and XlsxWriter count UTF-16 units: an emoji is two, and XlsxWriter cuts what is longer silently."""
    import xlsxwriter

    cell = for_cell(text)
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as workbook:
        workbook.add_worksheet().write_string(0, 0, cell)

    read = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert read is not None
    assert read["A1"].value == cell
    assert len(cell.encode("utf-16-le")) <= 2 * CELL_MAX_CHARS
    assert cell == text if len(text.encode("utf-16-le")) <= 2 * CELL_MAX_CHARS else cell.endswith("😀…")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("济南", "济南"),
        ("a/b\\c", "a_b_c"),
        ("C:", "C_"),
        ('x"y<z>|*?', "x_y_z____"),
        ("tab\there\nnewline", "tab_here_newline"),
        ("  名称. ", "名称"),
        ("..", "_"),
        ("", "_"),
        ("申报书\x1b[31m.docx", "申报书_[31m.docx"),
        ("证明材料\u202excod.docx", "证明材料_xcod.docx"),
        ("gbk\udcd6.doc", "gbk_.doc"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("console.txt", "console.txt"),
    ],
)
def test_file_name(name: str, safe: str) -> None:
    assert file_name(name) == safe


def test_a_long_name_is_cut_at_a_character_boundary_to_255_bytes_keeping_the_extension() -> None:
    name = "山东省" + "很长的企业名称" * 230 + ".docx"  # 4,854 bytes of UTF-8
    assert len(name.encode()) > 4800

    safe = file_name(name)

    assert len(safe.encode()) <= NAME_MAX_BYTES
    assert len(safe.encode()) > NAME_MAX_BYTES - 4  # cut no more than the last character needs
    assert safe.endswith(".docx")
    assert name.startswith(safe.removesuffix(".docx"))


@pytest.mark.parametrize("char", ["a", "é", "名", "😀"])
def test_the_cut_never_splits_a_character(char: str) -> None:
    safe = file_name(char * 300)

    assert len(safe.encode()) <= NAME_MAX_BYTES
    assert set(safe) == {char}


def test_a_tag_before_the_extension_is_kept_when_the_name_is_cut() -> None:
    safe = file_name("名" * 200 + ".docx", "（2）")

    assert len(safe.encode()) <= NAME_MAX_BYTES
    assert safe.endswith("名（2）.docx")


def test_an_extension_too_long_to_be_one_is_cut_with_the_name() -> None:
    safe = file_name("a." + "b" * 300)

    assert len(safe.encode()) == NAME_MAX_BYTES
    assert safe.startswith("a.bbb")


def test_a_file_name_is_one_the_file_system_takes(tmp_path: Path) -> None:
    name = "\x1b[31m" + "名" * 2000 + "/../\x00\u202e.docx"

    path = tmp_path / file_name(name)
    path.write_bytes(b"x")

    assert path.read_bytes() == b"x"
    assert path.parent == tmp_path
