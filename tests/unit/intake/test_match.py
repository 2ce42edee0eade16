"""The subject names the enterprise, compared after normalising both sides (daemon/intake/match.py)."""

from __future__ import annotations

import time

import pytest
from conftest import ENTERPRISE, ROSTER_ROWS

from daemon.domain import Code, RosterEntry
from daemon.intake.match import Roster, match_subject, normalise

LINYI = "临沂沂蒙新材料科技（集团）有限公司"


@pytest.fixture
def roster() -> Roster:
    return Roster(RosterEntry(name=name, city=city) for city, name, *_ in ROSTER_ROWS)


# -- normalise ---------------------------------------------------------------------------------------------


def test_full_width_brackets_equal_half_width_ones() -> None:
    assert normalise("临沂沂蒙新材料科技（集团）有限公司") == normalise("临沂沂蒙新材料科技(集团)有限公司")


def test_full_width_latin_letters_and_digits_become_half_width() -> None:
    assert normalise("ＡＢＣ１２３科技") == "ABC123科技"


@pytest.mark.parametrize(
    "space",
    [" ", "\t", "\u3000", "\u00a0", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\r\n"],
    ids=["space", "tab", "ideographic", "nbsp", "zwsp", "zwnj", "zwj", "word-joiner", "bom", "crlf"],
)
def test_white_space_and_zero_width_characters_are_removed(space: str) -> None:
    assert normalise(f"{space}济南{space}明湖软件科技有限公司{space}") == ENTERPRISE


PREFIXES = [
    *["回复:", "回复：", "答复:", "答复：", "转发:", "转发："],
    *["Re:", "RE:", "re:", "Fw:", "FW:", "Fwd:", "FWD：", "Re: ", "回复 : "],
]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_reply_and_forward_prefix_is_removed(prefix: str) -> None:
    assert normalise(prefix + ENTERPRISE) == ENTERPRISE


def test_repeated_mixed_prefixes_are_all_removed() -> None:
    assert normalise(f"回复：Re: 转发:Fwd: FW：答复: {ENTERPRISE}") == ENTERPRISE


def test_prefix_words_without_a_colon_are_kept() -> None:
    assert normalise("转发申报材料") == "转发申报材料"


def test_prefix_is_only_removed_at_the_start() -> None:
    assert normalise(f"{ENTERPRISE}Re:") == f"{ENTERPRISE}Re:"


def test_a_subject_of_a_hundred_thousand_prefixes_is_normalised_in_linear_time() -> None:
    """One prefix removed at a time copied the rest each time: 300,000 of them took minutes."""
    started = time.monotonic()

    assert normalise("Re:回复：" * 300_000 + ENTERPRISE) == ENTERPRISE

    assert time.monotonic() - started < 5


def test_normalise_is_idempotent() -> None:
    once = normalise(f" 回复： {LINYI}\u200b ")
    assert normalise(once) == once


# -- match_subject against a roster ------------------------------------------------------------------------


def test_exact_subject_matches_without_a_problem(roster: Roster) -> None:
    result = match_subject(ENTERPRISE, roster)
    assert result.enterprise == ENTERPRISE
    assert result.problem is None


def test_match_returns_the_rosters_own_spelling(roster: Roster) -> None:
    result = match_subject("Re：临沂沂蒙新材料科技(集团)有限公司\u3000", roster)
    assert result.enterprise == LINYI
    assert result.problem is None


def test_roster_spelled_with_half_width_brackets_matches_full_width_subject() -> None:
    roster = Roster([RosterEntry(name="临沂沂蒙新材料科技(集团)有限公司")])
    assert match_subject(LINYI, roster).enterprise == "临沂沂蒙新材料科技(集团)有限公司"


def test_subject_with_one_wrong_character_is_unknown_with_a_suggestion(roster: Roster) -> None:
    result = match_subject("济南明湖软件科技有限工司", roster)
    assert result.enterprise is None
    assert result.problem is not None
    assert result.problem.code is Code.UNKNOWN_ENTERPRISE
    assert result.problem.suggestion == ENTERPRISE


@pytest.mark.parametrize(
    "subject",
    [f"{ENTERPRISE}申报材料", f"2022年质量标杆申报-{ENTERPRISE}", f"【申报】{ENTERPRISE}（第二版）"],
)
def test_subject_with_extra_words_around_the_name_is_unknown_with_a_suggestion(subject: str, roster: Roster) -> None:
    result = match_subject(subject, roster)
    assert result.enterprise is None
    assert result.problem is not None
    assert result.problem.code is Code.UNKNOWN_ENTERPRISE
    assert result.problem.suggestion == ENTERPRISE


@pytest.mark.parametrize("subject", ["关于申报截止时间的咨询", "hello", "质量月活动通知"])
def test_unrelated_subject_is_unknown_without_a_suggestion(subject: str, roster: Roster) -> None:
    result = match_subject(subject, roster)
    assert result.enterprise is None
    assert result.problem is not None
    assert result.problem.code is Code.UNKNOWN_ENTERPRISE
    assert result.problem.suggestion is None


def test_empty_subject_with_a_roster_is_unknown_without_a_suggestion(roster: Roster) -> None:
    result = match_subject("", roster)
    assert result.enterprise is None
    assert result.problem is not None
    assert result.problem.code is Code.UNKNOWN_ENTERPRISE
    assert result.problem.suggestion is None


def test_suggestion_is_the_closest_of_several_names(roster: Roster) -> None:
    result = match_subject("青岛海岳橡胶制品有限责任公司", roster)
    assert result.problem is not None
    assert result.problem.suggestion == "青岛海岳橡胶制品有限公司"


def test_roster_find_and_len() -> None:
    roster = Roster([RosterEntry(name=ENTERPRISE), RosterEntry(name=LINYI)])
    assert len(roster) == 2
    assert roster.find(f" 回复:{ENTERPRISE} ") == RosterEntry(name=ENTERPRISE)
    assert roster.find("不存在的公司") is None


# -- match_subject without a roster ------------------------------------------------------------------------


def test_without_roster_the_normalised_subject_is_the_enterprise() -> None:
    result = match_subject("回复： 济南 明湖软件科技有限公司\u200b", None)
    assert result.enterprise == ENTERPRISE
    assert result.problem is None


def test_without_roster_full_width_brackets_become_half_width() -> None:
    assert match_subject(LINYI, None).enterprise == "临沂沂蒙新材料科技(集团)有限公司"


@pytest.mark.parametrize("subject", ["", "   ", "\u3000\u200b", "Re: 回复："])
def test_without_roster_an_empty_subject_is_unknown(subject: str) -> None:
    result = match_subject(subject, None)
    assert result.enterprise is None
    assert result.problem is not None
    assert result.problem.code is Code.UNKNOWN_ENTERPRISE
