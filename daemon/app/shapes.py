"""The JSON a message's verdict prints as (`check --json`, `process --json`): one shape, whether the verdict
was just judged or is read back from the database. Codes stay codes here; people read the text faces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from ..domain import Document, MessageKind, Outcome, Package, Problem, Verdict
from ..storage.models import BureauFile
from .queries import documents_of
from .views import DocumentView, MessageView


def verdict_shape(verdict: Verdict) -> dict[str, Any]:
    """A verdict just judged."""
    packages = [
        _package(
            p.enterprise,
            p.call,
            p.outcome,
            p.problems,
            [d.as_dict() for d in p.documents],
            _archive(p),
            p.seal.as_dict() if p.seal else None,
            p.title,
        )
        for p in verdict.packages
    ]
    mail = verdict.bureau
    letter = {"name": mail.letter.name, "pages": mail.letter.pages} if mail and mail.letter else None
    table = (
        {"name": mail.table.name, "call": mail.table.call, "enterprises": [r.name for r in mail.table.rows]}
        if mail and mail.table
        else None
    )
    bureau = (
        {"city": mail.city, "call": mail.call, "letter": letter, "table": table, "links": list(mail.links)}
        if mail
        else None
    )
    return _shape(verdict.kind, verdict.outcome, verdict.own, packages, bureau)


def view_shape(session: Session, view: MessageView) -> dict[str, Any]:
    """A verdict read back from the database."""
    documents = documents_of(session, [p.id for p in view.packages])
    packages = [
        _package(
            p.enterprise,
            p.call,
            p.outcome,
            p.problems,
            [_document(d) for d in documents[p.id]],
            f"{p.archive_name}.rar" if p.archive_name else None,
            p.seal.as_dict() if p.seal else None,
            p.title,
        )
        for p in view.packages
    ]
    bureau = None
    if view.kind is MessageKind.BUREAU:
        files = {f.kind: f for f in session.exec(select(BureauFile).where(col(BureauFile.message_id) == view.id))}
        letter, table = files.get("letter"), files.get("table")
        bureau = {
            "city": view.city,
            "call": view.call,
            "letter": {"name": letter.name, "pages": letter.pages} if letter else None,
            "table": {
                "name": table.name,
                "call": table.table_call,
                "enterprises": (table.entries or "").split("\n") if table.entries else [],
            }
            if table
            else None,
            "links": list(view.links),
        }
    return _shape(view.kind, view.outcome, view.problems, packages, bureau)


def _document(stored: DocumentView) -> dict[str, object]:
    return Document(stored.role, stored.name, stored.size, stored.sha256, contents=stored.contents).as_dict()


def _archive(package: Package) -> str | None:
    return f"{package.archive.name}.rar" if package.archive else None


def _package(
    enterprise: str | None,
    call: str | None,
    outcome: Outcome,
    problems: Sequence[Problem],
    documents: list[dict[str, object]],
    archive: str | None,
    seal: dict[str, str] | None,
    title: str | None,
) -> dict[str, Any]:
    return {
        "enterprise": enterprise,
        "call": call,
        "verdict": outcome.value,
        "problems": _problems(problems),
        "notes": _notes(problems),
        "documents": documents,
        "archive": archive,
        "seal": seal,
        "title": title,
    }


def _problems(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [p.as_dict() for p in problems if not p.is_note]


def _notes(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [p.as_dict() for p in problems if p.is_note]


def _shape(
    kind: MessageKind,
    outcome: Outcome,
    own: Sequence[Problem],
    packages: list[dict[str, Any]],
    bureau: dict[str, Any] | None,
) -> dict[str, Any]:
    if bureau is not None:
        return {
            "verdict": outcome.value,
            "kind": kind.value,
            **bureau,
            "items": packages,
            "problems": _problems(own),
        }
    empty: dict[str, Any] = {
        "enterprise": None,
        "call": None,
        "problems": [],
        "notes": [],
        "documents": [],
        "seal": None,
        "title": None,
    }
    single = packages[0] if packages else empty
    return {
        "verdict": outcome.value,
        "kind": kind.value,
        "enterprise": single["enterprise"],
        "call": single["call"],
        "problems": _problems(own) + single["problems"],
        "notes": single["notes"],
        "documents": single["documents"],
        "seal": single["seal"],
        "title": single["title"],
    }
