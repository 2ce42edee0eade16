"""What a form says about itself: the enterprise it names, its 质量标杆名称, the write-up's title (issue 11)."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES

from daemon.intake.form_facts import benchmark_title, first_heading, names_in
from daemon.intake.word import Paragraph, WordContent, read_word

SEALS = FIXTURES / "seals"
COMPANY = "济南明湖软件科技有限公司"


def content(
    *paragraphs: str, tables: tuple[tuple[tuple[str, ...], ...], ...] = (), styles: dict[str, str] | None = None
) -> WordContent:
    styles = styles or {}
    lines = list(paragraphs) + ["\t".join(row) for table in tables for row in table]
    return WordContent(
        tuple(Paragraph(p, styles.get(p, "")) for p in paragraphs), tables, "\n".join(lines), (), 0, False
    )


def test_the_form_names_its_enterprise_even_across_a_line_break_in_a_table_cell() -> None:
    form = read_word(SEALS / "e-seal.docx")
    assert names_in(form.text, [COMPANY])
    assert names_in(form.text, ["济南明湖软件科技 有限公司"])
    assert not names_in(form.text, ["济南明湖软件有限公司"])
    assert not names_in(form.text, ["  "])


@pytest.mark.skipif(shutil.which("antiword") is None, reason="antiword is not installed")
def test_a_doc_names_its_enterprise_too() -> None:
    assert names_in(read_word(SEALS / "e-seal.doc").text, [COMPANY])


def test_full_width_brackets_in_the_roster_match_half_width_ones_in_the_text() -> None:
    form = content("申报单位：山东天元重工(集团)有限公司")
    assert names_in(form.text, ["山东天元重工（集团）有限公司"])


def test_the_roster_names_in_a_text_leave_out_a_name_seen_only_inside_a_longer_one() -> None:
    form = content("申报单位：济南明湖软件科技有限公司", "合作单位：青岛蓝海陶瓷有限公司")
    roster = ["明湖软件科技有限公司", COMPANY, "青岛蓝海陶瓷有限公司", "淄博恒通环保科技有限公司"]
    assert names_in(form.text, roster) == (COMPANY, "青岛蓝海陶瓷有限公司")
    both = content("济南明湖软件科技有限公司与明湖软件科技有限公司")
    assert names_in(both.text, roster) == (COMPANY, "明湖软件科技有限公司")


def test_the_benchmark_title_is_the_cell_right_of_its_label() -> None:
    assert benchmark_title(read_word(SEALS / "e-seal.docx")) == "数字化质量管控实践"


def test_the_benchmark_title_is_the_cell_below_a_spaced_out_label() -> None:
    assert benchmark_title(read_word(SEALS / "write-up.docx")) == "全员质量改进经验"


@pytest.mark.parametrize("label", ["质量标杆名称", "质量标杆名称:", "质量标杆名称：", " 质量标杆名称 ", "典型经验名称"])
def test_a_label_is_read_without_spaces_and_colons(label: str) -> None:
    form = content(tables=(((label, "零缺陷质量文化建设"),),))
    assert benchmark_title(form) == "零缺陷质量文化建设"


def test_a_merged_label_cell_repeated_by_word_is_skipped() -> None:
    form = content(tables=((("质量标杆名称", "质量标杆名称", "卓越绩效管理模式"),),))
    assert benchmark_title(form) == "卓越绩效管理模式"


def test_an_empty_value_cell_falls_back_to_the_cell_below_then_to_a_line_of_text() -> None:
    below = content(tables=((("质量标杆名称", ""), ("供应链质量协同", "")),))
    assert benchmark_title(below) == "供应链质量协同"
    line = content("质量标杆名称： 全员质量改进经验", tables=((("质量标杆名称", ""),),))
    assert benchmark_title(line) == "全员质量改进经验"


def test_a_form_without_the_label_has_no_benchmark_title() -> None:
    assert benchmark_title(content("质量标杆名称", tables=((("申报单位", COMPANY),),))) is None
    assert benchmark_title(content()) is None


def test_the_write_up_title_is_its_heading_styled_paragraph() -> None:
    assert first_heading(read_word(SEALS / "write-up.docx")) == "以数字化手段推动全员质量改进的实践"


def test_without_a_heading_the_title_is_the_first_short_paragraph_after_the_attachment_mark() -> None:
    form = content("附件3", "", "打造全过程质量追溯体系", "公司" * 40)
    assert first_heading(form) == "打造全过程质量追溯体系"
    assert first_heading(content("附件 3：", "公司" * 40)) is None


def test_a_title_style_counts_as_a_heading() -> None:
    form = content("一、基本情况", "质量为先", styles={"质量为先": "Title"})
    assert first_heading(form) == "质量为先"


def test_beside_another_label_the_title_is_read_below() -> None:
    form = content(tables=((("质量标杆名称", "营业收入（万元）"), ("零缺陷质量文化建设", "123,294")),))
    assert benchmark_title(form) == "零缺陷质量文化建设"
