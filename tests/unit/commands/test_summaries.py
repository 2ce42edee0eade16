"""What a staff command says when it ends: a line of names stays readable at a campaign's size."""

from __future__ import annotations

from daemon.commands.staff import SHOWN_NAMES, names_line


def test_a_few_names_are_all_listed() -> None:
    assert names_line(["济南甲公司", "青岛乙公司"], whole="汇总表") == "济南甲公司、青岛乙公司"


def test_many_names_are_counted_after_the_first_and_the_line_says_where_the_whole_list_is() -> None:
    names = [f"企业{number}" for number in range(1_569)]

    line = names_line(names, whole="tree/汇总表.xlsx 的“状态”列")

    assert line.startswith("、".join(names[:SHOWN_NAMES]) + " 等 1569 家")
    assert names[SHOWN_NAMES] not in line.split(" 等 ")[0].split("、")
    assert line.endswith("；完整名单见 tree/汇总表.xlsx 的“状态”列")


def test_names_are_shown_with_their_control_characters_escaped() -> None:
    assert names_line(["甲\x1b[31m公司"], whole="汇总表") == "甲\\x1b[31m公司"
