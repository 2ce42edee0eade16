"""Every reply, for every problem code, is something a clerk can act on (issue 10, point 5): plain Chinese
with no code names, the office's phone number, and one term for the number (登记编号).

Each case is recorded as rows (a message, its package and the problem) and answered by the real planner and
templates, so what is checked is what would be sent.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import RECEIVED, SHANGHAI
from sqlmodel import Session

from daemon.campaign import Call, CallRules
from daemon.config import OfficeSettings
from daemon.domain import BUREAU_REVIEW_CODES, IGNORING_CODES, Code, MessageKind, Outcome, Problem, outcome_of
from daemon.render import Renderer
from daemon.service.replies import ReplyPlanner
from daemon.storage.db import open_database
from daemon.storage.models import MessageRecord, PackageRecord, ProblemRecord

PHONE = "0531-51782345"
RULES = CallRules(calls=(Call(name="2022年全国质量标杆", deadline=datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)),))
OFFICE = OfficeSettings(name="山东省工业和信息化厅科技处", phone=PHONE, contact="王老师")
BUREAU_ONLY = {
    Code.BUREAU_UNCONFIRMED,
    Code.UNKNOWN_CALL,
    Code.MISSING_LETTER,
    Code.INVALID_LETTER,
    Code.MISSING_TABLE,
    Code.INVALID_TABLE,
    Code.MISSING_ARCHIVE,
    Code.UNLISTED_ARCHIVE,
    Code.NAME_NEAR_MISS,
    Code.TOO_MANY_NATIONAL,
    Code.RECOMMENDED_TWICE,
}
DOCUMENT_CODES = {Code.MISSING_DOCUMENT, Code.NOT_WORD_DOCUMENT, Code.INVALID_DOCUMENT, Code.DUPLICATE_MEMBER}
NAMING_CODES = {
    Code.UNKNOWN_ENTERPRISE,
    Code.ARCHIVE_NAME_MISMATCH,
    Code.SUBJECT_NOT_EXACT,
    Code.ARCHIVE_NAME_NOT_EXACT,
}
CODE_NAMES = re.compile("|".join(sorted((c.value for c in Code), key=len, reverse=True)))
DETAILS = {
    Code.LATE: "2022-07-06T10:00:00+08:00",
    Code.TOO_LARGE: "314572800",
    Code.VOLUMES_PENDING: "第 1 卷|某某.part2.rar",
    Code.NAME_NEAR_MISS: "「泊」应为「舶」",
    Code.TOO_MANY_NATIONAL: "3",
}


def reply(tmp_path: Path, problem: Problem, kind: MessageKind) -> EmailMessage:
    engine = open_database(f"sqlite:///{tmp_path / 'shenbao.db'}")
    planner = ReplyPlanner(Renderer("科技处 <kejichu2019@shandong.cn>", OFFICE), RULES, "2022年质量标杆", 10)
    bureau = kind is MessageKind.BUREAU
    outcome = outcome_of([problem])
    if bureau:
        whole = Outcome.REVIEW if problem.code in BUREAU_REVIEW_CODES else Outcome.BUREAU
    with Session(engine) as session:
        row = MessageRecord(
            raw_sha256="0" * 64,
            raw_size=1,
            source="test",
            message_id="<a@b.cn>",
            subject="某某有限公司",
            sender="clerk@example.cn",
            received_at=RECEIVED,
            processed_at=RECEIVED,
            outcome=whole if bureau else outcome,
            kind=kind,
            city="济南" if bureau else None,
            call="default" if bureau else None,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        package = PackageRecord(
            message_id=row.id, position=0, enterprise_name="某某有限公司", call="default", outcome=outcome
        )
        session.add(package)
        session.flush()
        session.add(
            ProblemRecord(
                message_id=row.id,
                package_id=None if problem.code in BUREAU_ONLY else package.id,
                position=0,
                code=problem.code.value,
                role=problem.role,
                suggestion=problem.suggestion,
                detail=problem.detail,
                enterprise=problem.enterprise,
            )
        )
        session.flush()
        item = planner.queue(session, row, RECEIVED)
        assert item is not None
        parsed = email.message_from_bytes(item.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


ANSWERED = [c for c in Code if c not in IGNORING_CODES]


@pytest.mark.parametrize("code", ANSWERED, ids=[c.value for c in ANSWERED])
def test_every_reply_speaks_plain_chinese_gives_the_phone_and_the_registration_number(
    tmp_path: Path, code: Code
) -> None:
    kind = MessageKind.BUREAU if code in BUREAU_ONLY else MessageKind.SUBMISSION
    problem = Problem(
        code,
        role="application_form" if code in DOCUMENT_CODES else None,
        suggestion="某某有限公司" if code in NAMING_CODES else None,
        detail=DETAILS.get(code, "某某"),
        enterprise="某某有限公司" if code in BUREAU_ONLY else None,
    )

    text, html = parts(reply(tmp_path, problem, kind))

    for part in (text, html):
        assert CODE_NAMES.search(part) is None, CODE_NAMES.search(part)
        assert PHONE in part
        assert "登记编号" in part
        assert "受理编号" not in part and "退回编号" not in part
    assert "SB-" in text
