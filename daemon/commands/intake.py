"""Commands on saved messages: check (judge, store nothing), process (judge and record), roster import."""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from sqlmodel import Session

from ..campaign import MIB, CallRules
from ..domain import Verdict
from ..explain import OUTCOME_WORDS, title
from ..intake.faults import EnvironmentFault
from ..pipeline import judge
from ..service.roster_sync import import_roster
from ..staff.roster import RosterError, read_roster
from ..text import for_terminal
from .common import (
    EXIT_OK,
    EnvironmentProblem,
    UsageError,
    require_rar_tool,
    roster_from_file,
    runtime_from,
    settings_from,
)


def verdict_json(verdict: Verdict) -> dict[str, object]:
    return {
        "verdict": verdict.outcome.value,
        "enterprise": verdict.enterprise,
        "problems": [p.as_dict() for p in verdict.problems],
        "documents": [d.as_dict() for d in verdict.documents],
    }


def verdict_text(label: str, verdict: Verdict, rules: CallRules) -> str:
    """Lines for a terminal: names from the message and its archive are shown with controls escaped."""
    lines = [f"{label}: {OUTCOME_WORDS[verdict.outcome]} ({verdict.outcome}) — {verdict.enterprise or '企业未识别'}"]
    for problem in verdict.problems:
        extra = "".join(f"; {key}: {value}" for key, value in problem.as_dict().items() if key not in ("code", "role"))
        lines.append(f"  ✗ {title(problem, rules)} [{problem.code}{extra}]")
    for document in verdict.documents:
        lines.append(f"  · {document.role}: {document.name} ({document.size:,} bytes, sha256 {document.sha256[:12]}…)")
    return "\n".join(map(for_terminal, lines))


def run_check(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    rules = settings.call_rules()
    if args.deadline is not None:
        rules = replace(rules, deadline=args.deadline)
    if args.max_archive_mb is not None:
        rules = replace(rules, max_archive_bytes=int(args.max_archive_mb * MIB))
    missing = [name for name in args.messages if not Path(name).is_file()]
    if missing:
        raise UsageError("no such file: " + ", ".join(missing))
    roster_path = args.roster or settings.roster_path
    roster = roster_from_file(roster_path) if roster_path else None
    require_rar_tool(rules)
    for name in args.messages:
        try:
            with tempfile.TemporaryDirectory(prefix="shenbao-check-") as workdir:
                verdict = judge(Path(name), roster=roster, rules=rules, workdir=Path(workdir)).verdict
        except EnvironmentFault as error:
            raise EnvironmentProblem(f"{name} could not be judged here: {error}") from error
        if args.json:
            print(json.dumps({"file": name, **verdict_json(verdict)}, ensure_ascii=False), flush=True)
        else:
            print(verdict_text(name, verdict, rules), flush=True)
    return EXIT_OK


def _eml_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return files


def run_process(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    rules = settings.call_rules()
    files = _eml_files(args.paths)
    require_rar_tool(rules)
    recorder = runtime_from(settings).recorder()
    for path in files:
        result = recorder.record(path.read_bytes(), source=str(path.resolve()))
        if args.json:
            print(
                json.dumps(
                    {
                        "file": str(path),
                        "id": result.record_id,
                        "verdict": result.outcome.value,
                        "enterprise": result.enterprise,
                        "new": result.created,
                    },
                    ensure_ascii=False,
                ),
                flush=True,
            )
        else:
            state = "recorded" if result.created else "already recorded"
            print(
                for_terminal(
                    f"{path}: {OUTCOME_WORDS[result.outcome]} ({result.outcome}) — "
                    f"{result.enterprise or '企业未识别'} [#{result.record_id}, {state}]"
                ),
                flush=True,
            )
    return EXIT_OK


def run_roster_import(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    try:
        entries = read_roster(args.file)
    except RosterError as error:
        raise UsageError(str(error)) from error
    with Session(runtime_from(settings, load_roster=False).engine) as session:
        change = import_roster(session, entries)
        session.commit()
    if args.json:
        print(json.dumps({"enterprises": len(entries), **asdict(change)}))
    else:
        print(
            f"{len(entries)} enterprises in {args.file}: {change.added} added, {change.updated} updated, "
            f"{change.withdrawn} no longer in the table"
        )
    return EXIT_OK
