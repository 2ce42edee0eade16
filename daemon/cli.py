"""The `shenbao` command: the one entry point, and the only place that chooses exit codes."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from . import logs
from .campaign import NameMatch
from .commands.exits import EXIT_ENVIRONMENT, EXIT_USAGE, EnvironmentProblem, UsageError
from .intake.faults import EnvironmentFault
from .storage.states import UserRole

Runner = Callable[[argparse.Namespace], int]


def _command(module: str, function: str, *, brief: bool = False) -> Runner:
    """A command's code, imported when that command runs: `shenbao status` does not load the daemon, the
    web console or the document readers, and starts in a fraction of the time.

    A `brief` command reads, writes what it was asked for and ends: it runs without the cycle collector, its
    objects freed by reference counting and the few cycles it makes by its end (the daemon's own digest runs
    with it)."""

    def run(args: argparse.Namespace) -> int:
        # what the imports make lives as long as the process: no collector rounds while they load (a fifth of
        # `status`'s start walked them again and again), and kept out of every round after (a staff view
        # makes objects by the hundred thousand, the daemon runs for months)
        gc.disable()
        try:
            runner: Runner = getattr(importlib.import_module(f"daemon.commands.{module}"), function)
            gc.freeze()
            if not brief:
                gc.enable()
            return runner(args)
        finally:
            gc.enable()  # for whoever called main() in-process (the tests)

    return run


def _deadline(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from error
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError(f"the deadline needs a UTC offset, e.g. {stamp.isoformat()}+08:00")
    return stamp


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from error
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


class _Version(argparse.Action):
    """--version, looked up only when asked: reading the installed distributions costs every command 40 ms."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        from importlib.metadata import version

        print(f"shenbao {version('shenbao')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shenbao", description="申报 mailbox: judge, file and answer submissions.")
    parser.add_argument("--version", action=_Version, help="show the installed version and exit")
    parser.add_argument(
        "--log-level", choices=logs.LEVELS, help="log this level and above (default: info for run, else warning)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # What every command shares, declared once: the configuration file and machine-readable output.
    configured = argparse.ArgumentParser(add_help=False)
    configured.add_argument("--config", type=Path, required=True, metavar="F", help="the configuration file")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="JSON for scripts instead of text for people")
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="JSON Lines: one object per line")

    check = commands.add_parser(
        "check", parents=[listing], help="judge saved messages (.eml) and print the verdicts; stores nothing"
    )
    check.add_argument("messages", nargs="+", metavar="MSG.eml")
    check.add_argument("--roster", type=Path, metavar="FILE.xlsx", help="the summary table (汇总表) to match against")
    check.add_argument("--deadline", type=_deadline, metavar="ISO", help="e.g. 2022-07-05T23:59:59+08:00")
    check.add_argument("--max-archive-mb", type=_megabytes, metavar="N", help="archive size limit in MiB (default 200)")
    check.add_argument("--config", type=Path, metavar="F", help="take the campaign's rules from this file")
    check.add_argument("--subject-match", choices=[m.value for m in NameMatch], help="exact or contains (default)")
    check.add_argument("--archive-name-match", choices=[m.value for m in NameMatch], help="exact or prefix (default)")
    check.set_defaults(run=_command("intake", "run_check"))

    process = commands.add_parser(
        "process", parents=[configured, listing], help="judge saved messages and record them in the database"
    )
    process.add_argument("paths", nargs="+", type=Path, metavar="FILE.eml|DIR")
    process.set_defaults(run=_command("intake", "run_process"))

    roster = commands.add_parser("roster", help="the summary table of invited enterprises")

    roster_commands = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    roster_import = roster_commands.add_parser(
        "import", parents=[configured, output], help="load a summary table (.xlsx or .xls) into the database"
    )
    roster_import.add_argument("file", type=Path, metavar="FILE.xlsx")
    roster_import.add_argument(
        "--call", metavar="CODE", help="the call it lists enterprises for (default: the one enterprises write to)"
    )
    roster_import.set_defaults(run=_command("intake", "run_roster_import"))

    database = commands.add_parser("db", help="the database itself")

    database_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = database_commands.add_parser(
        "upgrade", parents=[configured, output], help="bring the database schema to this version's"
    )
    upgrade.set_defaults(run=_command("mailbox", "run_db_upgrade"))

    run = commands.add_parser(
        "run", parents=[configured], help="watch the mailbox: judge, file and answer every message"
    )
    run.add_argument("--once", action="store_true", help="process what is waiting, send what is queued, then exit")
    run.add_argument("--dry-run", action="store_true", help="judge and record, but send and move nothing")
    run.add_argument("--now", type=_deadline, metavar="ISO", help="with --once: act as of this time (volume windows)")
    run.add_argument("--log-level", choices=logs.LEVELS, default=argparse.SUPPRESS, help="default: info")
    run.set_defaults(run=_command("mailbox", "run_daemon"), default_log_level="info")

    digest = commands.add_parser(
        "digest", parents=[configured, output], help="the daily digest for staff: send it now, or write it to a folder"
    )
    digest.add_argument("--output", type=Path, metavar="DIR", help="write the .eml and workbook here; send nothing")
    digest.add_argument("--now", type=_deadline, metavar="ISO", help="write it as of this time (with --output)")
    digest.set_defaults(run=_command("staff", "run_digest", brief=True))

    remind = commands.add_parser(
        "remind", parents=[configured, listing], help="deadline reminders to enterprises that have not been accepted"
    )
    remind.add_argument("--dry-run", action="store_true", help="list who would be reminded and why; send nothing")
    remind.add_argument("--now", type=_deadline, metavar="ISO", help="pretend it is this time (with offset)")
    remind.set_defaults(run=_command("staff", "run_remind"))

    status = commands.add_parser(
        "status", parents=[configured, listing], help="a table of the roster's enterprises and where each stands"
    )
    status.add_argument("--city", metavar="X", help="only this city's enterprises, and its bureau's bundles")
    status.add_argument("--call", metavar="CODE", help="only this call")
    status.add_argument("--bundles", action="store_true", help="also every city's bundle")
    status.set_defaults(run=_command("lookup", "run_status", brief=True))

    show = commands.add_parser(
        "show",
        parents=[configured, listing],
        help="every message and version of one enterprise, its problems and replies",
    )
    show.add_argument("name", metavar="NAME|SB-NUMBER", help="an enterprise's name (or a unique part), or a message")
    show.set_defaults(run=_command("lookup", "run_show", brief=True))

    export = commands.add_parser(
        "export", parents=[configured, output], help="the reviewers' folder tree: documents, 汇总表.xlsx and a manifest"
    )
    export.add_argument("folder", type=Path, metavar="DIR")
    export.set_defaults(run=_command("staff", "run_export", brief=True))

    resend = commands.add_parser(
        "resend", parents=[configured, output], help="send a message's receipt or rejection again"
    )
    resend.add_argument("reference", metavar="RECEIPT", help="the number in the reply, e.g. SB-000012")
    resend.set_defaults(run=_command("staff", "run_resend"))

    decide = commands.add_parser(
        "decide", parents=[configured, output], help="a person's verdict on a message; the enterprise is told"
    )
    decide.add_argument("reference", metavar="MESSAGE", help="the number in the reply, e.g. SB-000012")
    verdict = decide.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--accept", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    decide.add_argument("--note", required=True, metavar="TEXT", help="why; quoted to the enterprise")
    decide.add_argument(
        "--enterprise",
        metavar="NAME",
        help="attribute the message to this enterprise (or pick one in a bureau's email)",
    )
    decide.add_argument("--call", metavar="CODE", help="the call to accept a direct sender into")
    decide.add_argument("--city", metavar="X", help="the city whose bureau the sender speaks for")
    decide.set_defaults(run=_command("staff", "run_decide"))

    recheck = commands.add_parser(
        "recheck", parents=[configured, listing], help="judge stored messages again under today's roster and rules"
    )
    recheck.add_argument("--since", type=_deadline, metavar="ISO", help="only messages received since then")
    recheck_mode = recheck.add_mutually_exclusive_group()
    recheck_mode.add_argument("--notify", action="store_true", help="tell the senders whose verdict changed")
    recheck_mode.add_argument("--dry-run", action="store_true", help="show what would change; record nothing")
    recheck.set_defaults(run=_command("staff", "run_recheck"))

    attach = commands.add_parser(
        "attach", parents=[configured, listing], help="judge a message with the archive staff downloaded from its link"
    )
    attach.add_argument("reference", nargs="?", metavar="MESSAGE", help="the number in the reply, e.g. SB-000012")
    attach.add_argument("archives", nargs="*", type=Path, metavar="FILE.rar")
    attach.add_argument(
        "--dir", type=Path, metavar="DIR", help="match every archive in DIR to the link messages by name"
    )
    attach.add_argument("--no-notify", action="store_true", help="do not tell the sender the new verdict")
    attach.set_defaults(run=_command("staff", "run_attach"))

    demo = commands.add_parser("demo", help="run shenbao on sample submissions with loopback mail servers")

    demo.add_argument("--dir", type=Path, default=Path("shenbao-demo"), help="where to put its files (replaced)")
    demo.set_defaults(run=_command("mailbox", "run_demo_command"))

    requeue = commands.add_parser(
        "requeue", parents=[configured, output], help="take a quarantined message back: it is handled again"
    )
    requeue.add_argument("message", metavar="MESSAGE", help="FOLDER:UID (e.g. INBOX:17), or the number SB-000012")
    requeue.set_defaults(run=_command("mailbox", "run_requeue"))

    doctor = commands.add_parser(
        "doctor", parents=[configured, output], help="check the configuration, the RAR tool and the database"
    )
    doctor.add_argument("--offline", action="store_true", help="local checks only (for systemd's ExecStartPre)")
    doctor.set_defaults(run=_command("mailbox", "run_doctor"))

    web = commands.add_parser(
        "web", parents=[configured], help="the web console for staff (listens on [web] listen, 127.0.0.1:8080)"
    )
    web.set_defaults(run=_command("web", "run_web"))

    user = commands.add_parser("user", help="who may log in to the web console")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    user_add = user_commands.add_parser(
        "add", parents=[configured, output], help="add a user (asks for the password twice)"
    )
    user_add.add_argument("name", metavar="NAME")
    user_add.add_argument("--role", choices=[r.value for r in UserRole], default=UserRole.STAFF.value)
    user_add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user_list = user_commands.add_parser("list", parents=[configured, listing], help="the users and their roles")
    user_remove = user_commands.add_parser(
        "remove", parents=[configured, output], help="remove a user; their login ends at once"
    )
    user_remove.add_argument("name", metavar="NAME")
    for parser_of, runner in (
        (user_add, _command("web", "run_user_add")),
        (user_list, _command("web", "run_user_list")),
        (user_remove, _command("web", "run_user_remove")),
    ):
        parser_of.set_defaults(run=runner)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic reads every installed distribution's entry points for plugins as it builds its first validator:
    # shenbao uses none, and the scan is a hundredth of each command's start
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level or getattr(args, "default_log_level", "warning"))
    try:
        code: int = args.run(args)
    except UsageError as error:
        print(f"shenbao: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (EnvironmentProblem, EnvironmentFault) as error:
        print(f"shenbao: {error}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    return code


if __name__ == "__main__":
    sys.exit(main())
