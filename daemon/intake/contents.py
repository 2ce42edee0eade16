"""What the documents say, judged: the seal on the form, the enterprise the form names, the title.

Pure: the documents were read in an isolated child (`readers.read_contents`); here their contents meet the
call's rules and the roster. A form naming another enterprise of the roster goes to a person; a form on which
no seal is seen gets what the call's `seal` setting says; a form whose 申报单位 field names nobody of the roster
is a note for staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..campaign import Reading, Role, SealPolicy
from ..domain import Code, Contents, Document, Problem, Seal, SealStatus, Severity
from .form_facts import has_sender_field, names_in
from .match import normalise

_SEVERITY = {SealPolicy.NOTE: Severity.NOTE, SealPolicy.REVIEW: Severity.REVIEW, SealPolicy.REJECT: Severity.REJECT}


@dataclass(frozen=True)
class Read:
    """A document read: its contents, and for a form its text (to find the names it holds)."""

    contents: Contents
    text: str = ""


@dataclass(frozen=True)
class NotRead:
    """A document the readers could not read."""

    reason: str
    """For staff: why it could not be read."""
    too_hard: bool = False
    """It made the reader run out of time or memory: a person looks. Otherwise (a Word file our readers do
    not understand) nothing is known of it, which is no fault of the sender's."""


@dataclass(frozen=True)
class Judged:
    documents: tuple[Document, ...]
    problems: tuple[Problem, ...]
    seal: Seal | None
    title: str | None


def judge_contents(
    documents: Sequence[Document],
    results: Mapping[str, Read | NotRead],
    roles: Sequence[Role],
    enterprise: str | None,
    roster: Iterable[str],
    policy: SealPolicy,
) -> Judged:
    """`results` by SHA-256: the documents with their contents, the problems and notes they raise, the
    package's seal and its 质量标杆名称."""
    reading = {role.code: role.reading for role in roles}
    read = [
        replace(d, contents=result.contents) if isinstance(result := results.get(d.sha256), Read) else d
        for d in documents
    ]
    problems = [
        Problem(Code.UNREADABLE_DOCUMENT, role=d.role, detail=f"{d.name}：{result.reason}")
        for d in documents
        if isinstance(result := results.get(d.sha256), NotRead) and result.too_hard
    ]
    forms = [d for d in documents if reading.get(d.role) is Reading.FORM and d.sha256 in results]
    # the seal is looked for once there is a Word form (a form in another format is a problem of its own)
    seal = None if policy is SealPolicy.OFF or not any(d.is_word for d in forms) else _seal(forms, results)
    if seal is not None and seal.status is not SealStatus.FOUND:
        form_role = forms[0].role
        problems.append(Problem(Code.SEAL_NOT_FOUND, role=form_role, severity=_SEVERITY[policy]))
    if enterprise is not None:
        problems += _names(forms, results, enterprise, roster)
    titles = [
        result.contents.title
        for kind in (Reading.FORM, Reading.WRITE_UP)
        for d in documents
        if reading.get(d.role) is kind and isinstance(result := results.get(d.sha256), Read) and result.contents.title
    ]
    return Judged(tuple(read), tuple(problems), seal, titles[0] if titles else None)


def _seal(forms: Sequence[Document], results: Mapping[str, Read | NotRead]) -> Seal | None:
    """Found on any copy of the form (the Word file, a scan beside it), else not found, else unreadable;
    None when no form was there to look at (its absence is a problem of its own)."""
    statuses = []
    for form in forms:
        result = results[form.sha256]
        if isinstance(result, Read) and result.contents.seal is SealStatus.FOUND:
            return Seal(SealStatus.FOUND, form.name, result.contents.seal_picture)
        if isinstance(result, Read) and result.contents.seal is not None:
            statuses.append(result.contents.seal)
        elif isinstance(result, NotRead) and not result.too_hard:
            statuses.append(SealStatus.UNREADABLE)
    if not statuses:
        return None
    return Seal(SealStatus.NOT_FOUND if SealStatus.NOT_FOUND in statuses else SealStatus.UNREADABLE)


def _names(
    forms: Sequence[Document], results: Mapping[str, Read | NotRead], enterprise: str, roster: Iterable[str]
) -> list[Problem]:
    """The form must name its sender: another roster enterprise named instead goes to a person."""
    texts = [(d, result.text) for d in forms if isinstance(result := results[d.sha256], Read) and result.text]
    if not texts:
        return []
    names = {*roster, enterprise}
    others: list[str] = []
    for _document, text in texts:
        found = names_in(text, names)
        if any(normalise(name) == normalise(enterprise) for name in found):
            return []
        others += [name for name in found if name not in others]
    role = texts[0][0].role
    if others:
        return [Problem(Code.FOREIGN_DOCUMENT, role=role, detail="、".join(others), enterprise=others[0])]
    if any(has_sender_field(text) for _document, text in texts):
        return [Problem(Code.FORM_NAMES_NOBODY, role=role)]
    return []
