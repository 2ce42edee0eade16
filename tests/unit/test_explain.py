"""How times and counts are said to people (daemon/explain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from daemon.explain import shanghai_time


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        (datetime(2022, 6, 30, 16, 5, tzinfo=UTC), "2022年07月01日 00:05"),  # past midnight in Beijing
        (datetime(2022, 7, 5, 23, 59, tzinfo=timezone(timedelta(hours=8))), "2022年07月05日 23:59"),
        (datetime(2022, 1, 2, 3, 4, 59, tzinfo=timezone(timedelta(hours=-5))), "2022年01月02日 16:04"),
    ],
)
def test_a_moment_is_said_in_beijing_time_to_the_minute(moment: datetime, said: str) -> None:
    assert shanghai_time(moment) == said
