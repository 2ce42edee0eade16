"""What every command shares: exit codes, the errors that choose them, and loading what a command needs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from ..campaign import CallRules
from ..config import ConfigError, MissingSecret, Settings, load, secret
from ..intake.roster import RosterError
from ..service.runtime import Runtime
from ..storage.db import SchemaMismatch
from .exits import EnvironmentProblem, UsageError

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..intake.match import Roster
    from ..service.outbox import Sender


def settings_from(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    try:
        return load(path)
    except ConfigError as error:
        raise UsageError("configuration is not usable:\n" + str(error)) from error


def require_rar_tool(rules: CallRules) -> None:
    from ..intake.archive import UNRAR_HELP, self_test  # only the commands that read archives need it

    problem = self_test(rules.limits)
    if problem:
        raise EnvironmentProblem(f"{problem}.\n{UNRAR_HELP}")


def roster_from_file(path: Path) -> Roster:
    from ..intake.match import Roster
    from ..intake.roster import read_roster

    try:
        return Roster(read_roster(path))
    except RosterError as error:
        raise UsageError(str(error)) from error


def runtime_from(settings: Settings, *, load_roster: bool = True) -> Runtime:
    """The database, files and rules of a configuration, with the configured roster loaded if it changed."""
    try:
        runtime = Runtime.open(settings)
    except SchemaMismatch as error:
        raise EnvironmentProblem(str(error)) from error
    except SQLAlchemyError as error:
        raise EnvironmentProblem(f"cannot open the database {settings.storage.database}: {error}") from error
    if load_roster:
        try:
            runtime.refresh_rosters()
        except (RosterError, OSError) as error:
            raise UsageError(f"campaign.roster: {error}") from error
    return runtime


def staff_runtime(args: argparse.Namespace) -> Runtime:
    return runtime_from(settings_from(args.config))


def smtp_sender_for(settings: Settings) -> Sender:
    from ..service.outbox import Sender

    if settings.smtp is None:
        raise UsageError("the configuration has no [smtp] section: nothing can be sent")
    try:
        return Sender(settings.smtp, secret(settings.smtp.password_env))
    except MissingSecret as error:
        raise UsageError(str(error)) from error


def progress(args: argparse.Namespace, total: int, what: str) -> tqdm[Any]:
    """A progress bar on stderr for people at a terminal; silent when piped or under --json."""
    from tqdm import tqdm  # only the commands that show progress need it

    quiet = getattr(args, "json", False) or not sys.stderr.isatty()
    return tqdm(total=total, desc=what, unit="封", disable=quiet, leave=False, file=sys.stderr)


def say(args: argparse.Namespace, data: dict[str, object], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if getattr(args, "json", False) else text, flush=True)


def print_lines(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """JSON Lines: one object per listed thing."""
    for row in rows:
        print(json.dumps(row, ensure_ascii=False, default=str), flush=True)
