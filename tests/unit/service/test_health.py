"""When the daemon gives up on a failing database, how long it waits between tries, and the alert an outage
leaves (a clock the test turns, real SQLAlchemy errors)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import OperationalError

from daemon.service.health import BACKOFF_CAP, DatabaseHealth, summary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def readonly() -> OperationalError:
    return OperationalError(
        "INSERT INTO meta ...", {}, sqlite3.OperationalError("attempt to write a readonly database")
    )


def test_errors_are_given_up_on_only_after_both_the_patience_and_three_cycles() -> None:
    clock = Clock()
    health = DatabaseHealth(give_up_seconds=300, clock=clock)

    assert health.failed(readonly()) is None
    clock.now += 400  # long enough, but only the second failure
    assert health.failed(readonly()) is None
    failing = health.failed(readonly())

    assert failing is not None
    assert "400 s (3 times)" in str(failing) and "attempt to write a readonly database" in str(failing)


def test_many_quick_failures_are_not_given_up_on_before_the_patience_runs_out() -> None:
    clock = Clock()
    health = DatabaseHealth(give_up_seconds=300, clock=clock)

    for _ in range(50):
        clock.now += 5
        assert health.failed(readonly()) is None


def test_a_success_ends_the_outage_and_starts_the_count_again() -> None:
    clock = Clock()
    health = DatabaseHealth(give_up_seconds=300, clock=clock)
    health.failed(readonly())
    health.failed(readonly())

    outage = health.succeeded()

    assert outage is not None and outage.failures == 2
    assert "恢复" in outage.alert_text() and "attempt to write a readonly database" in outage.alert_text()
    assert health.succeeded() is None  # nothing to report twice
    clock.now += 1000
    assert health.failed(readonly()) is None  # a new outage: its clock starts now


def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    health = DatabaseHealth(give_up_seconds=1e9)
    delays = []
    for _ in range(10):
        health.failed(readonly())
        delays.append(health.backoff())

    assert delays == [1, 2, 4, 8, 16, 32, BACKOFF_CAP, BACKOFF_CAP, BACKOFF_CAP, BACKOFF_CAP]
    assert BACKOFF_CAP == 60


def test_the_summary_is_the_drivers_words_without_the_statement() -> None:
    assert summary(readonly()) == "OperationalError: attempt to write a readonly database"
