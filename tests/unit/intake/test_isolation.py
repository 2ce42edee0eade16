"""The isolated runner (issue 13, point 1): limited children forked from a warm server, each serving calls
one at a time until a fresh one must take over."""

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


def serving(isolation: Isolation, limits: Limits, folder: Path) -> int:
    """The pid of the child that serves the next call with these limits."""
    return isolation.run(limits, folder, tasks.where_and_who, 1)[3]


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


def test_the_function_runs_in_a_child_leading_its_own_group_in_the_given_folder(
    isolation: Isolation, tmp_path: Path
) -> None:
    first = isolation.run(ROOMY, tmp_path, tasks.where_and_who, 21)
    second = isolation.run(ROOMY, tmp_path / "..", tasks.where_and_who, 1)
    server = isolation._server
    assert server is not None
    assert first[:3] == (42, str(tmp_path), True)
    assert second[:2] == (2, str(tmp_path.parent))
    assert first[3] == second[3]  # the same warm child served both
    assert first[3] not in (os.getpid(), server.process.pid)


def test_a_server_started_ahead_serves_the_first_call(isolation: Isolation, tmp_path: Path) -> None:
    isolation.start()
    server = isolation._server
    assert server is not None and server.alive()
    isolation.start()  # already running: nothing more
    serving(isolation, ROOMY, tmp_path)
    assert isolation._server is server


def test_the_server_ends_at_once_without_finalising_what_it_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalising the image libraries' modules made every stop of the daemon wait 0.16 s for the server."""
    mark = tmp_path / "finalised"
    monkeypatch.setenv("ISOLATED_EXIT_MARK", str(mark))
    runner = Isolation(preload=("isolated_tasks", "isolated_exit"))
    serving(runner, ROOMY, tmp_path)
    server = runner._server
    assert server is not None
    runner.close()
    assert server.process.returncode == 0
    assert not mark.exists()


def test_a_child_serves_a_fixed_number_of_calls_then_a_fresh_one_takes_over(tmp_path: Path) -> None:
    runner = Isolation(preload=("isolated_tasks",), calls_per_child=2)
    try:
        pids = [serving(runner, ROOMY, tmp_path) for _ in range(3)]
    finally:
        runner.close()
    assert pids[0] == pids[1] != pids[2]
    assert ended(pids[0])


def test_calls_with_another_memory_cap_go_to_another_child(isolation: Isolation, tmp_path: Path) -> None:
    roomy = serving(isolation, ROOMY, tmp_path)
    tight = serving(isolation, Limits(512 << 20, 30), tmp_path)
    assert roomy != tight
    assert serving(isolation, ROOMY, tmp_path) == roomy


def test_after_running_out_of_memory_the_next_call_gets_a_fresh_child(isolation: Isolation, tmp_path: Path) -> None:
    tight = Limits(256 << 20, 30)
    before = serving(isolation, tight, tmp_path)
    with pytest.raises(MemoryError):
        isolation.run(tight, tmp_path, tasks.allocate, 512 << 20)
    assert serving(isolation, tight, tmp_path) != before


def test_a_child_whose_memory_grew_is_replaced_so_no_call_meets_the_cap_sooner(
    isolation: Isolation, tmp_path: Path
) -> None:
    before = serving(isolation, ROOMY, tmp_path)
    isolation.run(ROOMY, tmp_path, tasks.keep, 16 << 20)  # a little is kept: the child serves on
    assert serving(isolation, ROOMY, tmp_path) == before
    isolation.run(ROOMY, tmp_path, tasks.keep, 128 << 20)
    assert serving(isolation, ROOMY, tmp_path) != before


def test_a_child_that_left_a_process_running_is_replaced_and_the_process_killed(
    isolation: Isolation, tmp_path: Path
) -> None:
    before = serving(isolation, ROOMY, tmp_path)
    sleeper = isolation.run(ROOMY, tmp_path, tasks.leave_running)
    assert ended(sleeper)
    assert serving(isolation, ROOMY, tmp_path) != before


def test_a_timeout_counts_only_the_processor_time_of_its_own_call(isolation: Isolation, tmp_path: Path) -> None:
    """What tells a starved call (our trouble) from hard work (the input's) must not count earlier calls."""
    isolation.run(Limits(1 << 30, 30), tmp_path, tasks.burn, 1.5)
    with pytest.raises(TimedOut) as timeout:
        isolation.run(Limits(1 << 30, 1.0), tmp_path, tasks.sleep_with_a_grandchild, tmp_path / "pids")
    assert timeout.value.cpu_seconds < 0.5


def test_a_child_runs_the_image_libraries_on_its_one_thread(isolation: Isolation, tmp_path: Path) -> None:
    """Their own thread pools would only spin beside the call, and count against its memory cap."""
    assert isolation.run(ROOMY, tmp_path, tasks.threads_with_image_libraries) == 1


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


def test_idle_children_end_when_no_call_comes(tmp_path: Path) -> None:
    runner = Isolation(preload=("isolated_tasks",), idle_seconds=0.2)
    try:
        before = serving(runner, ROOMY, tmp_path)
        assert ended(before)
        assert serving(runner, ROOMY, tmp_path) != before
    finally:
        runner.close()
