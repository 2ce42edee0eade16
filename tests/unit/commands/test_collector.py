"""The cycle collector around a command: off while its modules load, and while a brief command runs."""

from __future__ import annotations

import argparse
import gc
import sys
import types
from collections.abc import Iterator

import pytest

from daemon.cli import _command


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """A command module whose command notes whether the collector was on when it ran."""
    seen: list[bool] = []
    module = types.ModuleType("daemon.commands.probe")

    def run_probe(args: argparse.Namespace) -> int:
        seen.append(gc.isenabled())
        return 0

    module.run_probe = run_probe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "daemon.commands.probe", module)
    try:
        yield seen
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_command_runs_with_the_collector(probe: list[bool]) -> None:
    assert _command("probe", "run_probe")(argparse.Namespace()) == 0
    assert probe == [True]


def test_a_brief_command_runs_without_it_and_gives_it_back(probe: list[bool]) -> None:
    assert _command("probe", "run_probe", brief=True)(argparse.Namespace()) == 0
    assert probe == [False]
    assert gc.isenabled()
