"""Hostile text from mail finds nothing that raises (issue 8, done-when): header values and names of files in
archives made of control characters, bidi overrides, ANSI escapes, path separators, Windows' device names,
surrogate-escaped bytes, very long or empty, through judging, recording, `export` and the digest; and what
is shown of them holds no character a terminal, a workbook or a file system acts on.

New RAR archives cannot be built at test time (no `rar`), so judging varies the header values around the
committed fixtures, and the names inside archives are generated into the database's rows and the display,
cell and file-name functions directly. The database takes no lone surrogate (sqlite3 refuses to encode one)
and intake never makes one (every byte is decoded), so the rows get none; the functions get them.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import hashlib
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RECEIVED, ROSTER_ROWS, SHANGHAI, rar, submission
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.campaign import DEFAULT_CALL, ArchiveLimits, Call, CallRules
from daemon.commands.intake import verdict_text
from daemon.domain import Code, Outcome, RosterEntry
from daemon.intake.context import Context
from daemon.intake.match import Roster
from daemon.pipeline import judge
from daemon.render import Renderer
from daemon.service.recorder import Recorder
from daemon.service.roster_sync import import_roster
from daemon.staff import digest, export
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.storage.models import DocumentRecord, Enterprise, MessageRecord
from daemon.tables import print_table
from daemon.text import CELL_MAX_CHARS, NAME_MAX_BYTES, file_name, for_cell, for_email, for_terminal

RULES = CallRules(calls=(Call(deadline=RECEIVED + timedelta(days=7)),), limits=ArchiveLimits(timeout_seconds=30))
ROSTER = Roster(RosterEntry(row[1], row[0], *row[2:]) for row in ROSTER_ROWS)
MOMENT = datetime(2022, 7, 2, 10, 0, tzinfo=SHANGHAI)

PIECES = [
    *["\x00", "\x07", "\x08", "\x0b", "\x0c", "\r", "\n", "\t", "\x7f", "\x85", "\x9b2J"],
    *["\x1b[31m", "\x1b[0m", "\x1b]0;owned\x07", "\x1bc", "\x1b[2J\x1b[H"],
    *["\u202e", "\u202d", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\ufeff", "\u200b"],
    *["/", "\\", "..", ".", " ", ":", "*", "?", '"', "<", ">", "|", "C:\\fakepath\\", "../../etc/passwd"],
    *["CON", "nul", "Com1", "LPT9", "aux.docx", "PRN."],
    *['=HYPERLINK("http://x","y")', "#N/A", "+1", "@SUM(1)", "<script>", "&amp;", "{{ x }}", "%s"],
    *["=?utf-8?B?", "?=", ";", "\ufffe", "\uffff", "名", "（集团）", "😀", "é", "İ"],
]
SURROGATES = st.integers(0xDC80, 0xDCFF).map(chr)
"""What surrogateescape makes of undecodable bytes."""


def hostile(*, surrogates: bool) -> st.SearchStrategy[str]:
    """Text a sender could send: pieces of trouble and arbitrary characters, sometimes repeated to a length
    no person types, sometimes empty."""
    piece = st.one_of(st.sampled_from(PIECES), st.text(max_size=6), *([SURROGATES] if surrogates else []))
    short = st.lists(piece, max_size=12).map("".join)
    long = st.tuples(short.filter(bool), st.integers(50, 1500)).map(lambda pair: pair[0] * pair[1])
    return st.one_of(short, short, long, st.just(""))


TEXT = hostile(surrogates=True)
STORABLE = hostile(surrogates=False)
ACTS = set(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) | {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e"}
ACTS |= {"\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029"}
"""Characters a terminal or a text renderer acts on: controls (ESC, CSI), line breaks, bidi controls."""

WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))}
FUNCTIONS = settings(max_examples=200, deadline=None)
WORKBOOKS = settings(max_examples=60, deadline=None)
JUDGING = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORDING = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- the functions of daemon/text.py -----------------------------------------------------------------------


@FUNCTIONS
@given(text=TEXT)
def test_for_terminal_leaves_nothing_to_act_on_and_changes_nothing_twice(text: str) -> None:
    shown = for_terminal(text)

    assert not ACTS & set(shown)
    shown.encode("utf-8")
    assert for_terminal(shown) == shown
    assert shown == text or "\\" in shown


@FUNCTIONS
@given(text=TEXT)
def test_for_email_keeps_only_tabs_and_line_feeds(text: str) -> None:
    shown = for_email(text)

    assert not (ACTS - {"\t", "\n"}) & set(shown)
    shown.encode("utf-8")


@WORKBOOKS
@given(texts=st.lists(TEXT, min_size=1, max_size=5))
def test_for_cell_gives_cells_a_workbook_saves_and_reads_back(texts: list[str]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([for_cell(text) for text in texts])
    buffer = io.BytesIO()

    workbook.save(buffer)

    read = load_workbook(io.BytesIO(buffer.getvalue())).active
    assert read is not None
    assert [cell.value or "" for cell in read[1]][: len(texts)] == [for_cell(text) for text in texts]
    assert all(len(for_cell(text)) <= CELL_MAX_CHARS for text in texts)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@FUNCTIONS
@given(name=TEXT, counter=st.integers(2, 10_000))
def test_file_name_is_a_component_any_file_system_takes(scratch: Path, name: str, counter: int) -> None:
    tag = f"（{counter}）"
    for safe in (file_name(name), file_name(name, tag)):
        encoded = safe.encode("utf-8")  # no lone surrogate
        assert 0 < len(encoded) <= NAME_MAX_BYTES
        assert safe not in (".", "..")
        assert safe == safe.strip(" .")
        assert not (ACTS | set('/\\:*?"<>|')) & set(safe)
        assert safe.split(".")[0].upper() not in WINDOWS_DEVICES
    assert tag in file_name(name, tag)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        (Path(folder) / file_name(name)).write_bytes(b"x")
        (Path(folder) / file_name(name, tag)).write_bytes(b"y")
        assert len(list(Path(folder).iterdir())) == 2


@FUNCTIONS
@given(rows=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4))
def test_print_table_prints_no_character_a_terminal_acts_on(rows: list[tuple[str, str]]) -> None:
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        print_table(rows)

    assert not (ACTS - {"\n"}) & set(printed.getvalue())
    assert printed.getvalue().count("\n") == len(rows)


# -- judging hostile header values -----------------------------------------------------------------------------

DATES = st.one_of(
    TEXT,
    st.builds(
        "{} {} {} {} {}".format,
        st.sampled_from(["Tue,", "", "Mon, 31"]),
        st.sampled_from(["28 Jun", "99999999999999999999 Jun", "0 Feb", "-1 Dec"]),
        st.one_of(st.integers(-(10**20), 10**20).map(str), st.sampled_from(["0", "0000", "1899", "9999", ""])),
        st.sampled_from(["09:30:00", "99:99:99", "23:59:60", "99999999999999999999:00"]),
        st.one_of(
            st.integers(-(10**20), 10**20).map(lambda n: f"{n:+05d}"), st.sampled_from(["+0800", "CST", "", "-0000"])
        ),
    ),
)


def header(value: str, encoded: bool) -> bytes:
    """`value` as a sender's client writes it: one UTF-8 encoded word, or raw 8-bit bytes as they come
    (line breaks and all: a value may end the headers or start new ones)."""
    data = value.encode("utf-8", "surrogatepass")
    return b"=?utf-8?B?" + base64.b64encode(data) + b"?=" if encoded else data


def hostile_message(
    subject: str, sender_name: str, filename: str, received: str, date: str, body: str, archive: str, encoded: bool
) -> bytes:
    parts = [
        b"Received: from mx.example.net by mail.shandong.cn; " + header(received, False),
        b"From: " + header(sender_name, encoded) + b" <ops@minghu-soft.cn>",
        b"To: kejichu2019@shandong.cn",
        b"Subject: " + header(subject, encoded),
        b"Date: " + header(date, False),
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="b0undary"',
        b"",
        b"--b0undary",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.encodebytes(body.encode("utf-8", "surrogatepass")),
        b"--b0undary",
        b'Content-Type: application/octet-stream; name="' + header(filename, encoded) + b'"',
        b'Content-Disposition: attachment; filename="' + header(filename, encoded) + b'"',
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.encodebytes(rar(archive)),
        b"--b0undary--",
        b"",
    ]
    return b"\r\n".join(parts)


@contextlib.contextmanager
def fresh_workdir(scratch: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        yield Path(folder)


@JUDGING
@given(
    subject=st.one_of(TEXT, TEXT.map(lambda text: ENTERPRISE + text)),
    sender_name=TEXT,
    filename=st.one_of(TEXT, TEXT.map(lambda text: f"{ENTERPRISE}{text}.rar")),
    received=DATES,
    date=DATES,
    body=TEXT,
    archive=st.sampled_from(["valid.rar", "hostile_names.rar", "nested.rar"]),
    encoded=st.booleans(),
)
def test_hostile_header_values_get_a_verdict_shown_safely(
    scratch: Path,
    subject: str,
    sender_name: str,
    filename: str,
    received: str,
    date: str,
    body: str,
    archive: str,
    encoded: bool,
) -> None:
    raw = hostile_message(subject, sender_name, filename, received, date, body, archive, encoded)

    with fresh_workdir(scratch) as workdir:
        judgement = judge(raw, context=Context(RULES, {DEFAULT_CALL: ROSTER}), workdir=workdir)

    verdict = judgement.verdict
    event(f"{verdict.outcome}: {' '.join(sorted(verdict.codes))}")
    assert verdict.outcome in set(Outcome)
    assert Code.UNREADABLE_MESSAGE not in verdict.codes  # headers there are, whatever their values
    assert judgement.message is not None
    received_at = judgement.message.received_at
    assert received_at is None or datetime(1900, 1, 1, tzinfo=SHANGHAI) < received_at.astimezone(SHANGHAI)
    shown = verdict_text("hostile.eml", verdict, RULES)
    assert not (ACTS - {"\n"}) & set(shown)
    shown.encode("utf-8")


# -- recording, export and the digest over hostile names -----------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, BlobStore, Recorder]:
    """Two roster enterprises, each with an accepted package (valid.rar, hostile_names.rar)."""
    folder = tmp_path_factory.mktemp("hostile-site")
    engine = open_database(f"sqlite:///{folder / 'shenbao.db'}")
    with Session(engine) as session:
        import_roster(session, [RosterEntry(row[1], row[0], *row[2:]) for row in ROSTER_ROWS[:2]], DEFAULT_CALL)
        session.commit()
    blobs = BlobStore(folder / "files")
    recorder = Recorder(engine, blobs, RULES)
    for row, fixture in zip(ROSTER_ROWS[:2], ["valid.rar", "hostile_names.rar"], strict=True):
        raw = submission(row[1], [(f"{row[1]}.rar", rar(fixture))], sender=row[5])
        assert recorder.record(raw, fixture).outcome is Outcome.ACCEPTED
    return engine, blobs, recorder


@RECORDING
@given(
    cities=st.lists(STORABLE, min_size=2, max_size=2),
    enterprises=st.lists(STORABLE, min_size=2, max_size=2),
    contact=STORABLE,
    documents=st.lists(STORABLE, min_size=6, max_size=6),
    subject=TEXT,
)
def test_recording_export_and_the_digest_take_any_names(
    site: tuple[Engine, BlobStore, Recorder],
    scratch: Path,
    cities: list[str],
    enterprises: list[str],
    contact: str,
    documents: list[str],
    subject: str,
) -> None:
    engine, blobs, recorder = site
    recorder.record(hostile_message(subject, contact, "x.rar", "", "", "", "not_rar.rar", True), "hostile.eml")
    with Session(engine) as session:  # names as a roster or an archive could give them, kept as they are
        for enterprise, city, name in zip(
            session.exec(select(Enterprise).order_by(Enterprise.id)), cities, enterprises, strict=True
        ):
            enterprise.city, enterprise.name, enterprise.contact = city, name, contact
            session.add(enterprise)
        for document, name in zip(
            session.exec(select(DocumentRecord).order_by(DocumentRecord.id)), documents, strict=True
        ):
            document.name = name
            session.add(document)
        for message in session.exec(select(MessageRecord)):
            message.sender_name = contact
            session.add(message)
        session.commit()

    with fresh_workdir(scratch) as folder:
        with Session(engine) as session:
            result = export.export(session, blobs, RULES, folder / "tree", lambda done, total, name: None)
            built = digest.gather(session, RULES, "质量标杆", MOMENT)
        written = digest.write(built, Renderer("科技处 <kejichu2019@shandong.cn>"), folder / "digest", "a@b.cn", MOMENT)

        assert result.enterprises == 2
        tree = folder / "tree"
        listed = [line.split("  ", 1) for line in (tree / export.MANIFEST).read_text(encoding="utf-8").splitlines()]
        assert len(listed) == result.files == 6 + 2
        for digest_hex, path in listed:
            assert all(0 < len(part.encode()) <= NAME_MAX_BYTES for part in path.split("/"))
            assert hashlib.sha256((tree / path).read_bytes()).hexdigest() == digest_hex
        names = (tree / export.NAMES).read_text(encoding="utf-8").splitlines()
        assert len(names) == 1 + 6
        assert all(line.count("\t") == len(export.NAMES_HEADER) - 1 for line in names)
        original = export.NAMES_HEADER.index("原文件名")
        assert {line.split("\t")[original] for line in names[1:]} == {for_terminal(name) for name in documents}
        load_workbook(tree / export.WORKBOOK)
        eml = email.message_from_bytes(written[0].read_bytes(), policy=email.policy.default)
        assert isinstance(eml, EmailMessage)
        [attachment] = list(eml.iter_attachments())
        assert attachment.get_content() == written[1].read_bytes()
        load_workbook(written[1])
