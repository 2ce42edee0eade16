"""Text from mail in the replies we send (daemon/render.py, issue 8, finding 5): the subject a sender wrote and
the names in their archive are quoted back, as text, never as markup or control characters."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.message import EmailMessage

import pytest
from conftest import ENTERPRISE, ROSTER_ROWS, SHANGHAI, rar, submission
from hostile_mail import with_subject
from jinja2 import DictLoader
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.campaign import DEFAULT_CALL, Call, CallRules
from daemon.domain import RosterEntry
from daemon.render import Renderer
from daemon.service.recorder import Recorder
from daemon.service.replies import ReplyPlanner
from daemon.service.roster_sync import import_roster
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.storage.models import MessageRecord

RULES = CallRules(calls=(Call(deadline=datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)),))
NOW = datetime(2022, 6, 28, 10, 0, tzinfo=SHANGHAI)
SUBJECT = "济南明湖\x0b软件\x00科技\x1b[2J<script>alert(1)</script>\u202e有限公司"
NOTE = "请补充盖章\x1b[31m<b>页</b>\x07"
CONTROLS = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\t", "\n"}
BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, dict[str, int]]:
    """An accepted package whose documents have control characters in their names (hostile_names.rar), and
    a message whose subject holds controls and markup."""
    folder = tmp_path_factory.mktemp("render")
    engine = open_database(f"sqlite:///{folder / 'shenbao.db'}")
    with Session(engine) as session:
        import_roster(session, [RosterEntry(row[1], row[0], *row[2:]) for row in ROSTER_ROWS], DEFAULT_CALL)
        session.commit()
    recorder = Recorder(engine, BlobStore(folder / "files"), RULES)
    archive = [(f"{ENTERPRISE}.rar", rar("hostile_names.rar"))]
    accepted = recorder.record(submission(attachments=archive), "accepted.eml")
    assert accepted.outcome.value == "accepted"
    quoted = recorder.record(with_subject(SUBJECT, attachments=archive), "quoted.eml")
    return engine, {"accepted": accepted.record_id, "quoted": quoted.record_id}


def reply(recorded: tuple[Engine, dict[str, int]], which: str, kind: str) -> EmailMessage:
    engine, ids = recorded
    planner = ReplyPlanner(Renderer("科技处 <kejichu2019@shandong.cn>"), RULES, "质量标杆", 10)
    with Session(engine) as session:
        row = session.get(MessageRecord, ids[which])
        assert row is not None
        item = planner.queue(session, row, NOW, kind=kind, note=NOTE, guard=False)
        assert item is not None
        raw = item.raw
        session.rollback()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML part, with their CRLF line ends made LF (a CR alone would still show)."""
    text, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return str(text.get_content()).replace("\r\n", "\n"), str(html.get_content()).replace("\r\n", "\n")


def test_the_names_in_the_archive_are_quoted_in_the_receipt_as_escapes(recorded: tuple[Engine, dict[str, int]]) -> None:
    text, html = parts(reply(recorded, "accepted", "receipt"))

    for part in (text, html):
        assert not (CONTROLS | BIDI) & set(part)
        assert "申报书\\x1b[31m红字\\x1b[0m.docx" in part
        assert "典型经验材料\\x0b竖排.docx" in part
        assert "证明材料\\u202excod.docx" in part


@pytest.mark.parametrize("kind", ["rejection", "review", "decision"])
def test_the_senders_subject_is_quoted_as_text_never_as_markup_or_control(
    recorded: tuple[Engine, dict[str, int]], kind: str
) -> None:
    message = reply(recorded, "quoted", kind)
    text, html = parts(message)

    for part in (text, html):
        assert not (CONTROLS | BIDI) & set(part)
        assert "济南明湖\\x0b软件\\x00科技\\x1b[2J" in part
    assert "<script>alert(1)</script>" in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not CONTROLS & set(str(message["Subject"]))
    if kind == "decision":
        assert "请补充盖章\\x1b[31m<b>页</b>\\x07" in text
        assert "请补充盖章\\x1b[31m&lt;b&gt;页&lt;/b&gt;\\x07" in html


def test_markup_a_filter_made_is_not_escaped_twice_and_its_controls_are_shown_too() -> None:
    templates = {
        "t.subject.j2": "s",
        "t.txt.j2": "{{ names|join('、') }}",
        "t.html.j2": "{{ names|join('、') }}|{{ name }}",
    }
    renderer = Renderer("科技处 <kejichu2019@shandong.cn>", loader=DictLoader(templates))

    _subject, text, html = renderer.render("t", {"names": ["a<b", "c\x1bd"], "name": "e&f\x00"}, NOW)

    assert text == "a<b、c\\x1bd"
    assert html == "a&lt;b、c\\x1bd|e&amp;f\\x00"
