"""Commands on saved messages: check (judge, store nothing), process (judge and record), roster import."""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from sqlmodel import Session

from ..app.queries import message_views
from ..app.shapes import verdict_shape, view_shape
from ..campaign import MIB, CallRules, NameMatch
from ..config import Settings
from ..domain import Problem, Verdict
from ..explain import OUTCOME_WORDS, SEAL_WORDS, contents_text, human_size, reference, title
from ..intake.context import Context
from ..intake.faults import EnvironmentFault
from ..intake.roster import RosterError, read_roster
from ..pipeline import judge
from ..service.roster_sync import import_roster
from ..text import for_terminal
from .common import progress, require_rar_tool, roster_from_file, runtime_from, settings_from
from .exits import EXIT_OK, EnvironmentProblem, UsageError


def verdict_text(label: str, verdict: Verdict, rules: CallRules) -> str:
    """A judged message for a person at a terminal: the outcome, then each package and problem in Chinese."""
    who = verdict.enterprise or (
        verdict.bureau.city and f"{verdict.bureau.city}市工业和信息化局" if verdict.bureau else None
    )
    lines = [f"{label}：{OUTCOME_WORDS[verdict.outcome]} — {who or '企业未识别'}"]
    lines += [f"  {_mark(problem)} {title(problem, rules)}{_detail(problem)}" for problem in verdict.own]
    for package in verdict.packages:
        if verdict.bureau is not None:
            lines.append(f"  ▸ {package.enterprise or '（未识别）'}：{OUTCOME_WORDS[package.outcome]}")
        lines += [f"    {_mark(problem)} {title(problem, rules)}{_detail(problem)}" for problem in package.problems]
        if package.title:
            lines.append(f"    质量标杆名称：{package.title}")
        if package.seal:
            lines.append(f"    申报书：{SEAL_WORDS[package.seal.status]}")
        for document in package.documents:
            facts = f"{human_size(document.size)}，{contents_text(document.contents)}"
            lines.append(f"    · {document.name}（{facts}，SHA-256 {document.sha256[:12]}…）")
    return "\n".join(map(for_terminal, lines))


def _mark(problem: Problem) -> str:
    """✗ for what changes the outcome, ⓘ for a note."""
    return "ⓘ" if problem.is_note else "✗"


def _detail(problem: Problem) -> str:
    said = list(dict.fromkeys(value for value in (problem.enterprise, problem.suggestion, problem.detail) if value))
    return f"（{'；'.join(said)}）" if said else ""


def check_context(args: argparse.Namespace, settings: Settings, rules: CallRules) -> Context:
    """The rosters `check` judges against: --roster for the call enterprises write to, else the configured
    files; no mailbox history."""
    paths = {rules.default_call: args.roster} if args.roster else settings.roster_paths()
    return Context(rules, {call: roster_from_file(path) for call, path in paths.items()})


def run_check(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    rules = settings.call_rules()
    if args.deadline is not None:
        calls = tuple(replace(c, deadline=args.deadline) if c.own_emails else c for c in rules.calls)
        rules = replace(rules, calls=calls)
    if args.max_archive_mb is not None:
        rules = replace(rules, max_archive_bytes=int(args.max_archive_mb * MIB))
    if args.subject_match is not None:
        rules = replace(rules, subject_match=NameMatch(args.subject_match))
    if args.archive_name_match is not None:
        rules = replace(rules, archive_name_match=NameMatch(args.archive_name_match))
    missing = [name for name in args.messages if not Path(name).is_file()]
    if missing:
        raise UsageError("没有这个文件：" + "、".join(missing))
    context = check_context(args, settings, rules)
    require_rar_tool(rules)
    for name in args.messages:
        try:
            with tempfile.TemporaryDirectory(prefix="shenbao-check-") as workdir:
                verdict = judge(Path(name), context=context, workdir=Path(workdir)).verdict
        except EnvironmentFault as error:
            raise EnvironmentProblem(f"{name} 此时无法核验（本机环境问题，不是邮件的问题）：{error}") from error
        if args.json:
            print(json.dumps({"file": name, **verdict_shape(verdict)}, ensure_ascii=False), flush=True)
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
    runtime = runtime_from(settings)
    recorder = runtime.recorder()
    bar = progress(args, len(files), "核验")
    for path in files:
        result = recorder.record(path.read_bytes(), source=str(path.resolve()))
        bar.update()
        if args.json:
            with Session(runtime.engine) as session:
                (view,) = message_views(session, ids=[result.record_id])
                shape = view_shape(session, view)
            line = {"file": str(path), "id": result.record_id, "reference": reference(result.record_id), **shape}
            print(json.dumps({**line, "new": result.created}, ensure_ascii=False), flush=True)
        else:
            state = "已记录" if result.created else "此前已记录"
            print(
                for_terminal(
                    f"{path}：{OUTCOME_WORDS[result.outcome]} — {result.enterprise or '—'}"
                    f"（{reference(result.record_id)}，{state}）"
                ),
                flush=True,
            )
    bar.close()
    return EXIT_OK


def run_roster_import(args: argparse.Namespace) -> int:
    settings = settings_from(args.config)
    try:
        entries = read_roster(args.file)
    except RosterError as error:
        raise UsageError(str(error)) from error
    rules = settings.call_rules()
    call = args.call or rules.default_call
    if rules.call(call) is None:
        raise UsageError(f"没有代码为 {call} 的评选（配置中的 campaign.calls）")
    with Session(runtime_from(settings, load_roster=False).engine) as session:
        change = import_roster(session, entries, call)
        session.commit()
    if args.json:
        print(json.dumps({"enterprises": len(entries), **asdict(change)}))
    else:
        print(
            f"{len(entries)} enterprises in {args.file}: {change.added} added, {change.updated} updated, "
            f"{change.withdrawn} no longer in the table"
        )
    return EXIT_OK
