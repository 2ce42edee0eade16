"""The isolated runner (issue 13, point 1): a fresh limited child per call, forked from a warm server."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import isolated_tasks as tasks
import pytest

from daemon.intake.faults import EnvironmentFault
from daemon.intake.isolation import Isolation, Limits, TimedOut

ROOMY = Limits(memory_bytes=1 << 30, timeout_seconds=30)


@pytest.fixture
def isolation() -> Iterator[Isolation]:
    runner = Isolation(preload=("isolated_tasks",))
    yield runner
    runner.close()


def ended(pid: int) -> bool:
    """Whether the process has ended, waiting for that event (not polling) for at most five seconds."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(handle, select.POLLIN)
        return bool(poller.poll(5000))
    finally:
        os.close(handle)


def test_the_function_runs_in_a_fresh_child_leading_its_own_group_in_the_given_folder(
    isolation: Isolation, tmp_path: Path
) -> None:
    first = isolation.run(ROOMY, tmp_path, tasks.where_and_who, 21)
    second = isolation.run(ROOMY, tmp_path, tasks.where_and_who, 1)
    assert first[:3] == (42, str(tmp_path), True)
    assert second[0] == 2
    assert len({first[3], second[3], os.getpid()}) == 3


def test_what_the_function_raises_is_raised_here(isolation: Isolation, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sender's fault"):
        isolation.run(ROOMY, tmp_path, tasks.fail, "sender's fault")


def test_an_exception_pickle_cannot_rebuild_arrives_as_its_text(isolation: Isolation, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="_Stubborn: detail"):
        isolation.run(ROOMY, tmp_path, tasks.unpicklable_error)


def test_the_memory_cap_makes_a_large_allocation_fail_in_the_child(isolation: Isolation, tmp_path: Path) -> None:
    assert isolation.run(ROOMY, tmp_path, tasks.allocate, 64 << 20) == 64 << 20
    with pytest.raises(MemoryError):
        isolation.run(Limits(256 << 20, 30), tmp_path, tasks.allocate, 512 << 20)


def test_running_out_of_time_kills_the_child_and_what_it_started(isolation: Isolation, tmp_path: Path) -> None:
    marker = tmp_path / "pids"
    with pytest.raises(TimedOut):
        isolation.run(Limits(1 << 30, 1.0), tmp_path, tasks.sleep_with_a_grandchild, marker)
    child, grandchild = (int(pid) for pid in marker.read_text().split())
    assert ended(child)
    assert ended(grandchild)


def test_a_child_killed_by_someone_else_is_an_environment_fault(isolation: Isolation, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFault, match="SIGKILL"):
        isolation.run(ROOMY, tmp_path, tasks.kill_myself)
    assert isolation.run(ROOMY, tmp_path, tasks.where_and_who, 3)[0] == 6


def test_a_dead_server_is_replaced_at_the_next_call(isolation: Isolation, tmp_path: Path) -> None:
    isolation.run(ROOMY, tmp_path, tasks.where_and_who, 1)
    server = isolation._server
    assert server is not None
    server.process.kill()
    server.process.wait()
    assert isolation.run(ROOMY, tmp_path, tasks.where_and_who, 4)[0] == 8
    assert isolation._server is not server


def test_calls_from_threads_each_get_their_own_answer(isolation: Isolation, tmp_path: Path) -> None:
    answers: dict[int, int] = {}

    def call(value: int) -> None:
        answers[value] = isolation.run(ROOMY, tmp_path, tasks.where_and_who, value)[0]

    threads = [threading.Thread(target=call, args=(value,)) for value in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {value: value * 2 for value in range(6)}


def test_a_function_defined_in_main_is_refused_before_anything_runs(isolation: Isolation, tmp_path: Path) -> None:
    def local() -> None: ...

    local.__module__ = "__main__"
    with pytest.raises(ValueError, match="importable"):
        isolation.run(ROOMY, tmp_path, local)
    assert isolation._server is None
