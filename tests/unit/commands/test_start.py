"""What a command spends before its work: nothing on searching the installed distributions for plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

PROBE = """
import sys
from daemon.cli import main
main(["check", sys.argv[1]])
import pydantic.plugin._loader as loader
print(loader._plugins is None)
"""


def test_a_command_does_not_read_every_distributions_entry_points_for_pydantic_plugins() -> None:
    """pydantic does so as it builds its first validator (a hundredth of a command's start) unless told that
    no plugin is wanted: shenbao uses none."""
    environment = {key: value for key, value in os.environ.items() if key != "PYDANTIC_DISABLE_PLUGINS"}
    message = FIXTURES / "bureaus" / "messages" / "15-download-link.eml"

    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(message)], env=environment, capture_output=True, text=True, check=True
    )

    assert done.stdout.splitlines()[-1] == "True"
