"""Nothing anyone sends can crash the intake: random and mangled MIME and archive bytes (issue 2, Done-when).

Each example that still carries a RAR archive starts the archive worker (a child process running `unrar`),
so the example counts are kept small enough for the file to run in well under a minute.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RECEIVED, ROSTER_ROWS, rar, submission, valid_submission
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from daemon.campaign import DEFAULT_CALL, ArchiveLimits, Call, CallRules
from daemon.domain import Code, Outcome, RosterEntry, Verdict
from daemon.intake.context import Context
from daemon.intake.match import Roster
from daemon.pipeline import judge

ROSTER = Roster(
    RosterEntry(name, city, title, contact, phone, email) for city, name, title, contact, phone, email in ROSTER_ROWS
)
RULES = CallRules(
    calls=(Call(deadline=RECEIVED + timedelta(days=7)),),
    limits=ArchiveLimits(timeout_seconds=30),
)
BLOCKING_CODES = {
    Code.NOT_RAR,
    Code.TOO_LARGE,
    Code.ENCRYPTED_ARCHIVE,
    Code.INCOMPLETE_ARCHIVE,
    Code.CORRUPT_ARCHIVE,
    Code.UNSAFE_ARCHIVE,
}
DOCUMENT_CODES = {
    Code.MISSING_DOCUMENT,
    Code.NOT_WORD_DOCUMENT,
    Code.INVALID_DOCUMENT,
    # what the documents say: a damaged form may lose its seal, its name, or be unreadable altogether
    Code.UNREADABLE_DOCUMENT,
    Code.SEAL_NOT_FOUND,
    Code.FOREIGN_DOCUMENT,
    Code.FORM_NAMES_NOBODY,
}

VALID_RAR = rar("valid.rar")
VALID_MESSAGE = valid_submission()
_HEADER_END = VALID_MESSAGE.index(b"\n\n")
_ARCHIVE_START = VALID_MESSAGE.index(base64.b64encode(VALID_RAR)[:60])
_ARCHIVE_END = VALID_MESSAGE.index(b"\n--", _ARCHIVE_START)
REGIONS = {
    "anywhere": (0, len(VALID_MESSAGE)),
    "headers": (0, _HEADER_END),
    "archive base64": (_ARCHIVE_START, _ARCHIVE_END),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@contextmanager
def fresh_workdir(scratch: Path) -> Iterator[Path]:
    """An empty folder per example (hypothesis runs many examples in one test call)."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        yield Path(folder)


def judged(raw: bytes, scratch: Path, roster: Roster | None = ROSTER) -> Verdict:
    with fresh_workdir(scratch) as workdir:
        context = Context(RULES, {DEFAULT_CALL: roster} if roster else {})
        verdict = judge(raw, context=context, workdir=workdir).verdict
    assert isinstance(verdict, Verdict)
    assert verdict.outcome in set(Outcome)
    assert all(isinstance(problem.code, Code) for problem in verdict.problems)
    event(f"{verdict.outcome}: {' '.join(sorted(verdict.codes))}")
    return verdict


@st.composite
def mangled(draw: st.DrawFn, data: bytes, regions: dict[str, tuple[int, int]]) -> bytes:
    """`data` with a few byte flips, insertions, deletions or a truncation, placed in the given regions."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        low, high = regions[draw(st.sampled_from(sorted(regions)))]
        high = min(high, len(out))
        if high <= low:
            low, high = 0, len(out)
        if high == 0:
            out += draw(st.binary(min_size=1, max_size=8))
            continue
        position = draw(st.integers(min_value=low, max_value=high - 1))
        operation = draw(st.sampled_from(["flip", "flip", "insert", "delete", "truncate"]))
        if operation == "flip":
            out[position] ^= draw(st.integers(min_value=1, max_value=255))
        elif operation == "insert":
            out[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del out[position : position + draw(st.integers(min_value=1, max_value=32))]
        else:
            del out[position:]
    return bytes(out)


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WITH_ARCHIVE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ARCHIVE_ONLY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(raw=st.binary(max_size=4096))
def test_arbitrary_bytes_always_get_a_verdict(scratch: Path, raw: bytes) -> None:
    judged(raw, scratch)


@FAST
@given(
    raw=st.lists(
        st.sampled_from(
            [
                b"From: a@b.cn\n",
                b"Subject: =?gb2312?b?",
                b"Content-Type: multipart/mixed; boundary=x\n",
                b"Content-Type: message/rfc822\n",
                b"Content-Transfer-Encoding: base64\n",
                b"Content-Disposition: attachment; filename*=gbk''%D6%D0.rar\n",
                b"Received: x; Tue, 31 Feb 2022 99:99:99 +9999\n",
                b"\n",
                b"--x\n",
                b"--x--\n",
                b"UmFyIRoHAQA=\n",
                b"\xd6\xd0\xce\xc4",
            ]
        ),
        max_size=40,
    ).map(b"".join)
)
def test_mime_shaped_junk_always_gets_a_verdict(scratch: Path, raw: bytes) -> None:
    judged(raw, scratch)


@WITH_ARCHIVE
@given(raw=mangled(VALID_MESSAGE, REGIONS))
def test_a_mangled_submission_always_gets_a_verdict(scratch: Path, raw: bytes) -> None:
    verdict = judged(raw, scratch)
    if verdict.codes & BLOCKING_CODES:
        assert not verdict.codes & DOCUMENT_CODES
        assert verdict.documents == ()


@WITH_ARCHIVE
@given(raw=mangled(VALID_MESSAGE, REGIONS))
def test_a_mangled_submission_always_gets_a_verdict_without_a_roster(scratch: Path, raw: bytes) -> None:
    judged(raw, scratch, roster=None)


def mangled_archive(fixture: str) -> st.SearchStrategy[bytes]:
    data = rar(fixture)
    return mangled(data, {"anywhere": (0, len(data)), "headers": (0, 128), "tail": (len(data) - 64, len(data))})


@ARCHIVE_ONLY
@given(archive=st.sampled_from(["valid.rar", "solid.rar", "nested.rar", "rar4_gbk_names.rar"]).flatmap(mangled_archive))
def test_a_mangled_archive_gives_only_archive_or_document_problems(scratch: Path, archive: bytes) -> None:
    verdict = judged(submission(attachments=[(f"{ENTERPRISE}.rar", archive)]), scratch)
    assert verdict.codes <= BLOCKING_CODES | DOCUMENT_CODES
    if verdict.codes & BLOCKING_CODES:
        assert len(verdict.problems) == 1
        assert verdict.documents == ()
    if verdict.outcome is Outcome.ACCEPTED:
        assert {d.role for d in verdict.documents} == {"application_form", "experience", "proof"}


@ARCHIVE_ONLY
@given(
    subject=st.text(max_size=60),
    filename=st.text(max_size=60),
    body=st.text(max_size=200),
)
def test_any_subject_file_name_and_body_text_gets_a_verdict(
    scratch: Path, subject: str, filename: str, body: str
) -> None:
    try:
        raw = submission(subject, [(filename, VALID_RAR)], body=body)
    except (ValueError, TypeError, AttributeError, IndexError, LookupError):
        assume(False)  # the email package refuses to build this message at all: nothing to judge
    judged(raw, scratch)
