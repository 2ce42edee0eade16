"""Preloaded by an isolation test: marks the file ISOLATED_EXIT_MARK names when the interpreter that imported
it is finalised (atexit), which a server ending at once never is."""

from __future__ import annotations

import atexit
import os
from pathlib import Path

atexit.register(lambda: Path(os.environ["ISOLATED_EXIT_MARK"]).write_text("finalised", encoding="utf-8"))
