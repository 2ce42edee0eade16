"""From raw submission email to verdict: every code and every outcome (issue 2, points 5 and 6)."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RAR, RECEIVED, ROSTER_ROWS, rar, submission, valid_submission

from daemon.campaign import DEFAULT_CALL, MIB, ArchiveLimits, Call, CallRules, Role
from daemon.domain import Code, Outcome, Problem, RosterEntry, Verdict, outcome_of
from daemon.intake.context import Context
from daemon.intake.match import Roster
from daemon.pipeline import Judgement, judge

ROSTER = Roster(
    RosterEntry(name, city, title, contact, phone, email) for city, name, title, contact, phone, email in ROSTER_ROWS
)
ARCHIVE_NAME = f"{ENTERPRISE}.rar"


def run(
    raw: bytes,
    workdir: Path,
    *,
    rules: CallRules | None = None,
    roster: Roster | None = ROSTER,
    **kwargs: object,
) -> Judgement:
    context = Context(rules or CallRules(), {DEFAULT_CALL: roster} if roster else {})
    return judge(raw, context=context, workdir=workdir, **kwargs)  # type: ignore[arg-type]


def verdict_of(raw: bytes, workdir: Path, **kwargs: object) -> Verdict:
    return run(raw, workdir, **kwargs).verdict  # type: ignore[arg-type]


def with_archive(fixture: str, name: str = ARCHIVE_NAME, **kwargs: object) -> bytes:
    return submission(attachments=[(name, rar(fixture))], **kwargs)  # type: ignore[arg-type]


def the(verdict: Verdict, code: Code) -> Problem:
    (problem,) = [p for p in verdict.problems if p.code is code]
    return problem


def roles(verdict: Verdict, code: Code) -> set[str | None]:
    return {p.role for p in verdict.problems if p.code is code}


def unrar_bytes(fixture: str, member: str) -> bytes:
    return subprocess.run(["unrar", "p", "-inul", str(RAR / fixture), member], check=True, capture_output=True).stdout


def unrar_sha256(fixture: str, member: str) -> str:
    return hashlib.sha256(unrar_bytes(fixture, member)).hexdigest()


# -- accepted -----------------------------------------------------------------------------------------------


def test_a_valid_submission_is_accepted_with_its_documents_listed(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(), workdir)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.problems == ()
    assert verdict.enterprise == ENTERPRISE
    assert [(d.role, d.name, d.size, d.sha256) for d in verdict.documents] == [
        (role, name, len(unrar_bytes("valid.rar", name)), unrar_sha256("valid.rar", name))
        for role, name in [
            ("application_form", "申报书.docx"),
            ("experience", "典型经验材料.docx"),
            ("proof", "证明材料.docx"),
        ]
    ]


def test_the_documents_of_an_accepted_submission_are_handed_over_for_keeping(workdir: Path) -> None:
    judgement = run(valid_submission(), workdir)
    stored = {sha256: hashlib.sha256(path.read_bytes()).hexdigest() for sha256, path in judgement.files}
    assert {d.sha256 for d in judgement.verdict.documents} == set(stored) == set(stored.values())


@pytest.mark.parametrize(
    "fixture",
    ["nested.rar", "junk.rar", "solid.rar", "doc_format.rar", "rar4_gbk_names.rar"],
)
def test_archives_that_follow_the_rules_in_other_shapes_are_accepted(workdir: Path, fixture: str) -> None:
    verdict = verdict_of(with_archive(fixture), workdir)
    assert all(p.is_note for p in verdict.problems)  # their forms carry no seal: the receipt asks to confirm it
    assert verdict.outcome is Outcome.ACCEPTED
    assert {d.role for d in verdict.documents} == {"application_form", "experience", "proof"}


def test_a_scan_beside_the_word_form_is_listed_too(workdir: Path) -> None:
    verdict = verdict_of(with_archive("nested.rar"), workdir)
    forms = {d.name for d in verdict.documents if d.role == "application_form"}
    assert forms == {"济南明湖软件科技有限公司/1-申报书.docx", "济南明湖软件科技有限公司/申报书（盖章扫描件）.pdf"}


def test_junk_files_are_not_listed_as_documents(workdir: Path) -> None:
    verdict = verdict_of(with_archive("junk.rar"), workdir)
    assert [d.name for d in verdict.documents] == ["申报书.docx", "典型经验材料.docx", "证明材料.docx"]


def test_a_complete_volume_set_is_one_archive_named_without_its_part_numbers(workdir: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.part{n}.rar", rar(f"volumes.part{n}.rar")) for n in (1, 2, 3)])
    verdict = verdict_of(raw, workdir)
    assert verdict.outcome is Outcome.ACCEPTED
    assert len(verdict.documents) == 3


def test_without_a_roster_the_subject_is_the_enterprise(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(), workdir, roster=None)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.enterprise == ENTERPRISE


def test_the_archive_named_after_the_enterprise_is_the_one_judged(workdir: Path) -> None:
    raw = submission(attachments=[("旧版本.rar", rar("rar4_gbk_names.rar")), (ARCHIVE_NAME, rar("valid.rar"))])
    verdict = verdict_of(raw, workdir)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.archive is not None and verdict.archive.name == ENTERPRISE


# -- the enterprise -----------------------------------------------------------------------------------------


def test_an_unknown_subject_is_unknown_enterprise_with_a_suggestion(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(subject="济南明湖软件科技公司"), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.enterprise is None
    assert the(verdict, Code.UNKNOWN_ENTERPRISE).suggestion == ENTERPRISE


def test_an_unknown_enterprise_does_not_hide_the_other_problems(workdir: Path) -> None:
    verdict = verdict_of(with_archive("missing_proof.rar", subject="济南明湖软件科技公司"), workdir)
    assert verdict.codes == {Code.UNKNOWN_ENTERPRISE, Code.MISSING_DOCUMENT}
    assert roles(verdict, Code.MISSING_DOCUMENT) == {"proof"}
    assert the(verdict, Code.UNKNOWN_ENTERPRISE).suggestion == ENTERPRISE


def test_the_archive_name_is_not_checked_when_the_enterprise_is_unknown(workdir: Path) -> None:
    verdict = verdict_of(with_archive("valid.rar", name="申报材料.rar", subject="某某公司"), workdir)
    assert verdict.codes == {Code.UNKNOWN_ENTERPRISE}


def test_an_archive_not_named_after_the_enterprise_is_archive_name_mismatch(workdir: Path) -> None:
    verdict = verdict_of(with_archive("valid.rar", name="申报材料.rar"), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.ARCHIVE_NAME_MISMATCH}
    assert verdict.enterprise == ENTERPRISE
    assert len(verdict.documents) == 3


def test_an_archive_name_differing_only_in_width_and_spaces_matches(workdir: Path) -> None:
    raw = with_archive("valid.rar", name="济南明湖软件科技 有限公司.rar")
    assert verdict_of(raw, workdir).outcome is Outcome.ACCEPTED


def test_without_a_roster_the_archive_must_be_named_like_the_subject(workdir: Path) -> None:
    verdict = verdict_of(with_archive("valid.rar", subject="济南某某有限公司"), workdir, roster=None)
    assert verdict.codes == {Code.ARCHIVE_NAME_MISMATCH}
    assert verdict.enterprise == "济南某某有限公司"


# -- the attachment -----------------------------------------------------------------------------------------


def test_no_attachment_is_no_attachment(workdir: Path) -> None:
    verdict = verdict_of(submission(), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.NO_ATTACHMENT}
    assert verdict.enterprise == ENTERPRISE


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (f"{ENTERPRISE}.zip", rar("not_rar.rar")),
        (ARCHIVE_NAME, rar("not_rar.rar")),
        (ARCHIVE_NAME, b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(200)),
        ("申报书.docx", b"PK\x03\x04" + bytes(200)),
    ],
    ids=["zip", "zip-named-rar", "7z-named-rar", "loose-document"],
)
def test_attachments_none_of_which_is_a_rar_archive_are_not_rar(workdir: Path, name: str, data: bytes) -> None:
    verdict = verdict_of(submission(attachments=[(name, data)]), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.NOT_RAR}


def test_a_rar_archive_is_recognised_by_content_whatever_its_name(workdir: Path) -> None:
    verdict = verdict_of(with_archive("valid.rar", name=f"{ENTERPRISE}.zip"), workdir)
    assert Code.NOT_RAR not in verdict.codes
    assert len(verdict.documents) == 3


def test_an_archive_over_the_size_limit_is_too_large_and_not_opened(workdir: Path) -> None:
    judgement = run(with_archive("missing_proof.rar"), workdir, rules=CallRules(max_archive_bytes=1000))
    assert judgement.verdict.codes == {Code.TOO_LARGE}
    assert judgement.verdict.outcome is Outcome.REJECTED
    assert judgement.verdict.documents == ()
    assert judgement.files == ()


def test_the_size_limit_counts_every_volume_of_a_set(workdir: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.part{n}.rar", rar(f"volumes.part{n}.rar")) for n in (1, 2, 3)])
    assert verdict_of(raw, workdir, rules=CallRules(max_archive_bytes=30_000)).codes == {Code.TOO_LARGE}


def test_an_archive_exactly_at_the_size_limit_is_not_too_large(workdir: Path) -> None:
    rules = CallRules(max_archive_bytes=len(rar("valid.rar")))
    assert verdict_of(valid_submission(), workdir, rules=rules).outcome is Outcome.ACCEPTED


def test_the_default_size_limit_is_200_mib() -> None:
    assert CallRules().max_archive_bytes == 200 * MIB == 200 * 2**20


@pytest.mark.parametrize("fixture", ["encrypted.rar", "encrypted_headers.rar"])
def test_a_password_protected_archive_is_encrypted_archive(workdir: Path, fixture: str) -> None:
    verdict = verdict_of(with_archive(fixture), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.ENCRYPTED_ARCHIVE}
    assert verdict.documents == ()


@pytest.mark.parametrize(
    "parts",
    [(1,), (1, 3), (2, 3), (1, 2)],
    ids=["part1-only", "part2-missing", "part1-missing", "part3-missing"],
)
def test_a_volume_set_with_volumes_missing_is_incomplete_archive(workdir: Path, parts: tuple[int, ...]) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.part{n}.rar", rar(f"volumes.part{n}.rar")) for n in parts])
    verdict = verdict_of(raw, workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.INCOMPLETE_ARCHIVE}


def test_a_lone_first_volume_under_a_plain_rar_name_is_incomplete_archive(workdir: Path) -> None:
    assert verdict_of(with_archive("volumes.part1.rar"), workdir).codes == {Code.INCOMPLETE_ARCHIVE}


def test_incomplete_archive_names_the_missing_volume(workdir: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.part{n}.rar", rar(f"volumes.part{n}.rar")) for n in (1, 3)])
    assert f"{ENTERPRISE}.part2.rar" in (the(verdict_of(raw, workdir), Code.INCOMPLETE_ARCHIVE).detail or "")


@pytest.mark.parametrize("fixture", ["corrupt.rar", "truncated.rar"])
def test_a_damaged_archive_is_corrupt_archive_with_no_document_checks(workdir: Path, fixture: str) -> None:
    verdict = verdict_of(with_archive(fixture), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.CORRUPT_ARCHIVE}
    assert verdict.documents == ()


@pytest.mark.parametrize(
    ("fixture", "member"),
    [
        ("symlink.rar", "link.docx"),
        ("hardlink.rar", "申报书-硬链接.docx"),
        ("filecopy.rar", "副本-申报书.docx"),
        ("dotdot.rar", "../evil.docx"),
    ],
)
def test_an_unsafe_archive_goes_to_review_saying_what_was_found(workdir: Path, fixture: str, member: str) -> None:
    verdict = verdict_of(with_archive(fixture), workdir)
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.codes == {Code.UNSAFE_ARCHIVE}
    assert member in (the(verdict, Code.UNSAFE_ARCHIVE).detail or "")
    assert verdict.documents == ()


def test_an_archive_over_a_cap_goes_to_review(workdir: Path) -> None:
    rules = CallRules(limits=ArchiveLimits(max_members=2))
    verdict = verdict_of(valid_submission(), workdir, rules=rules)
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.codes == {Code.UNSAFE_ARCHIVE}


# -- the documents ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "code", "role"),
    [
        ("missing_proof.rar", Code.MISSING_DOCUMENT, "proof"),
        ("pdf_form.rar", Code.NOT_WORD_DOCUMENT, "application_form"),
        ("wps_form.rar", Code.NOT_WORD_DOCUMENT, "application_form"),
        ("fake_docx.rar", Code.INVALID_DOCUMENT, "experience"),
        ("docx_missing_part.rar", Code.INVALID_DOCUMENT, "proof"),
        ("fake_doc.rar", Code.INVALID_DOCUMENT, "application_form"),
    ],
)
def test_a_document_problem_is_reported_with_its_role(workdir: Path, fixture: str, code: Code, role: str) -> None:
    verdict = verdict_of(with_archive(fixture), workdir)
    assert verdict.outcome is Outcome.REJECTED
    assert [(p.code, p.role) for p in verdict.problems] == [(code, role)]


def test_the_roles_of_a_call_come_from_its_rules(workdir: Path) -> None:
    rules = CallRules(roles=(Role("licence", "营业执照", ("营业执照",), ("pdf",)),))
    accepted = verdict_of(with_archive("nested.rar"), workdir, rules=rules)
    assert accepted.outcome is Outcome.ACCEPTED
    assert [(d.role, d.name) for d in accepted.documents] == [
        ("licence", "济南明湖软件科技有限公司/证明材料/营业执照.pdf")
    ]
    missing = verdict_of(valid_submission(), workdir, rules=rules)
    assert [(p.code, p.role) for p in missing.problems] == [(Code.MISSING_DOCUMENT, "licence")]


def test_an_archive_of_empty_folders_misses_every_document(workdir: Path) -> None:
    verdict = verdict_of(with_archive("empty_names_only_dirs.rar"), workdir)
    assert verdict.codes == {Code.MISSING_DOCUMENT}
    assert roles(verdict, Code.MISSING_DOCUMENT) == {"application_form", "experience", "proof"}


def test_every_problem_is_reported_not_just_the_first(workdir: Path) -> None:
    raw = with_archive("missing_proof.rar", name="材料.rar")
    rules = CallRules(calls=(Call(deadline=RECEIVED - timedelta(days=1)),))
    verdict = verdict_of(raw, workdir, rules=rules)
    assert verdict.codes == {Code.LATE, Code.ARCHIVE_NAME_MISMATCH, Code.MISSING_DOCUMENT}


# -- the deadline -------------------------------------------------------------------------------------------


def test_a_message_received_after_the_deadline_is_late_among_its_other_problems(workdir: Path) -> None:
    rules = CallRules(calls=(Call(deadline=RECEIVED - timedelta(minutes=1)),))
    verdict = verdict_of(with_archive("missing_proof.rar"), workdir, rules=rules)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.codes == {Code.LATE, Code.MISSING_DOCUMENT}


def test_a_late_but_otherwise_valid_submission_is_rejected_as_late(workdir: Path) -> None:
    rules = CallRules(calls=(Call(deadline=RECEIVED - timedelta(minutes=1)),))
    verdict = verdict_of(valid_submission(), workdir, rules=rules)
    assert verdict.codes == {Code.LATE}
    assert len(verdict.documents) == 3


def test_the_deadline_is_compared_across_time_zones(workdir: Path) -> None:
    utc_deadline = datetime.fromisoformat("2022-06-28T01:29:59+00:00")  # 09:29:59 in Shanghai
    assert verdict_of(valid_submission(), workdir, rules=CallRules(calls=(Call(deadline=utc_deadline),))).codes == {
        Code.LATE
    }
    in_time = datetime.fromisoformat("2022-06-28T01:30:00+00:00")
    assert (
        verdict_of(valid_submission(), workdir, rules=CallRules(calls=(Call(deadline=in_time),))).codes == frozenset()
    )


def test_a_message_received_exactly_at_the_deadline_is_not_late(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(), workdir, rules=CallRules(calls=(Call(deadline=RECEIVED),)))
    assert verdict.outcome is Outcome.ACCEPTED


def test_a_late_date_header_does_not_make_a_message_received_in_time_late(workdir: Path) -> None:
    # Date: says RECEIVED (after the deadline); our server's Received: stamp says two days earlier.
    raw = valid_submission(received=RECEIVED - timedelta(days=2))
    verdict = verdict_of(raw, workdir, rules=CallRules(calls=(Call(deadline=RECEIVED - timedelta(days=1)),)))
    assert Code.LATE not in verdict.codes
    assert verdict.outcome is Outcome.ACCEPTED


def test_an_early_date_header_does_not_save_a_message_received_late(workdir: Path) -> None:
    raw = valid_submission(received=RECEIVED + timedelta(days=2))
    verdict = verdict_of(raw, workdir, rules=CallRules(calls=(Call(deadline=RECEIVED + timedelta(days=1)),)))
    assert verdict.codes == {Code.LATE}


def test_the_topmost_received_header_is_the_one_that_counts(workdir: Path) -> None:
    older_hop = ("Received", f"from client by mx.example.net; {format_datetime(RECEIVED + timedelta(days=5))}")
    raw = valid_submission(headers=[older_hop])
    verdict = verdict_of(raw, workdir, rules=CallRules(calls=(Call(deadline=RECEIVED + timedelta(days=1)),)))
    assert Code.LATE not in verdict.codes


def test_without_received_headers_the_date_header_decides(workdir: Path) -> None:
    raw = valid_submission(received=None)
    assert verdict_of(raw, workdir, rules=CallRules(calls=(Call(deadline=RECEIVED - timedelta(seconds=1)),))).codes == {
        Code.LATE
    }
    assert verdict_of(raw, workdir, rules=CallRules(calls=(Call(deadline=RECEIVED),))).codes == frozenset()


def test_the_imap_internaldate_wins_over_every_header(workdir: Path) -> None:
    rules = CallRules(calls=(Call(deadline=RECEIVED + timedelta(days=1)),))
    late = verdict_of(valid_submission(), workdir, rules=rules, internaldate=RECEIVED + timedelta(days=2))
    assert late.codes == {Code.LATE}


def test_late_is_reported_even_beside_an_archive_that_cannot_be_read(workdir: Path) -> None:
    rules = CallRules(calls=(Call(deadline=RECEIVED - timedelta(days=1)),))
    verdict = verdict_of(with_archive("encrypted.rar", subject="某某公司"), workdir, rules=rules)
    assert verdict.codes == {Code.LATE, Code.UNKNOWN_ENTERPRISE, Code.ENCRYPTED_ARCHIVE}


def test_late_is_reported_beside_a_too_large_archive(workdir: Path) -> None:
    rules = CallRules(calls=(Call(deadline=RECEIVED - timedelta(days=1)),), max_archive_bytes=100)
    assert verdict_of(with_archive("missing_proof.rar"), workdir, rules=rules).codes == {Code.LATE, Code.TOO_LARGE}


# -- messages that are not ordinary submissions -------------------------------------------------------------

QQ_LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=0a3b2c&t=exs_ftn_download&code=9f8e"


def test_a_download_link_instead_of_an_attachment_goes_to_review(workdir: Path) -> None:
    raw = submission(body=f"附件过大，已用超大附件发送：\n{QQ_LINK}\n请查收。")
    verdict = verdict_of(raw, workdir)
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.codes == {Code.ATTACHMENT_LINK}
    assert QQ_LINK in (the(verdict, Code.ATTACHMENT_LINK).detail or "")


def test_a_download_link_beside_a_picture_is_still_attachment_link(workdir: Path) -> None:
    raw = submission(attachments=[("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64))], body=f"下载：{QQ_LINK}")
    assert verdict_of(raw, workdir).codes == {Code.ATTACHMENT_LINK}


def test_the_163_big_attachment_css_alone_is_no_link(workdir: Path) -> None:
    raw = submission(body="<style>#divNeteaseBigAttach {display:none}</style>您好")
    assert verdict_of(raw, workdir).codes == {Code.NO_ATTACHMENT}


def test_a_letter_with_no_attachment_no_link_and_no_known_subject_is_not_a_submission(workdir: Path) -> None:
    verdict = verdict_of(submission(subject="请问申报截止时间是哪天？", body="老师您好，请问截止时间？"), workdir)
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.codes == {Code.NOT_A_SUBMISSION}
    assert verdict.enterprise is None


def test_an_unknown_subject_with_an_archive_is_judged_as_a_submission(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(subject="请问申报截止时间是哪天？"), workdir)
    assert Code.NOT_A_SUBMISSION not in verdict.codes
    assert Code.UNKNOWN_ENTERPRISE in verdict.codes


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": "系统退信", "sender": "MAILER-DAEMON@mail.shandong.cn"},
        {"sender": "postmaster@minghu-soft.cn"},
        {"subject": f"Undelivered Mail Returned to Sender: {ENTERPRISE}"},
    ],
    ids=["cn-bounce", "postmaster", "undelivered-subject"],
)
def test_a_bounce_carrying_the_archive_is_ignored_with_only_bounce(workdir: Path, kwargs: dict[str, str]) -> None:
    judgement = run(valid_submission(**kwargs), workdir)
    assert judgement.verdict.outcome is Outcome.IGNORED
    assert judgement.verdict.problems == (Problem(Code.BOUNCE),)
    assert judgement.verdict.documents == ()
    assert judgement.verdict.enterprise is None
    assert judgement.files == ()


def test_an_auto_reply_is_ignored(workdir: Path) -> None:
    verdict = verdict_of(
        submission(subject=f"自动回复：{ENTERPRISE}", headers=[("Auto-Submitted", "auto-replied")]), workdir
    )
    assert verdict.outcome is Outcome.IGNORED
    assert verdict.codes == {Code.AUTO_REPLY}


def test_bulk_mail_is_ignored(workdir: Path) -> None:
    verdict = verdict_of(valid_submission(headers=[("Precedence", "bulk")]), workdir)
    assert verdict.outcome is Outcome.IGNORED
    assert verdict.codes == {Code.BULK}


@pytest.mark.parametrize("raw", [b"", b"\n\n\n", b"\x00\x01\x02 not mail"], ids=["empty", "blank-lines", "binary"])
def test_an_unparsable_message_is_rejected_as_unreadable(workdir: Path, raw: bytes) -> None:
    judgement = run(raw, workdir)
    assert judgement.verdict.outcome is Outcome.REJECTED
    assert judgement.verdict.codes == {Code.UNREADABLE_MESSAGE}
    assert judgement.message is None


def test_a_message_can_be_judged_from_a_file(workdir: Path, tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(valid_submission())
    assert run(path.read_bytes(), workdir).verdict.outcome is Outcome.ACCEPTED
    assert (
        judge(path, context=Context(CallRules(), {DEFAULT_CALL: ROSTER}), workdir=workdir).verdict.outcome
        is Outcome.ACCEPTED
    )


def forwarded(outer_subject: str, inner_subject: str, archive: bytes) -> bytes:
    inner = EmailMessage()
    inner["From"] = "zhang@minghu-soft.cn"
    inner["To"] = "ops@minghu-soft.cn"
    inner["Subject"] = inner_subject
    inner["Date"] = format_datetime(RECEIVED - timedelta(days=1))
    inner.set_content("申报材料见附件。")
    inner.add_attachment(archive, maintype="application", subtype="octet-stream", filename=ARCHIVE_NAME)
    outer = EmailMessage()
    outer["Received"] = f"from mx.example.net by mail.shandong.cn with ESMTPS; {format_datetime(RECEIVED)}"
    outer["From"] = "ops@minghu-soft.cn"
    outer["To"] = "kejichu2019@shandong.cn"
    outer["Subject"] = outer_subject
    outer["Date"] = format_datetime(RECEIVED)
    outer.set_content("转发申报材料。")
    outer.add_attachment(inner)
    return outer.as_bytes()


def test_a_forwarded_submission_is_judged_by_the_outer_subject(workdir: Path) -> None:
    verdict = verdict_of(forwarded(ENTERPRISE, "申报材料", rar("valid.rar")), workdir)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.enterprise == ENTERPRISE
    assert len(verdict.documents) == 3


def test_the_inner_subject_of_a_forward_does_not_count(workdir: Path) -> None:
    verdict = verdict_of(forwarded("转发：申报材料", ENTERPRISE, rar("valid.rar")), workdir)
    assert Code.UNKNOWN_ENTERPRISE in verdict.codes
    assert verdict.enterprise is None


def test_a_forwarded_archive_is_checked_like_an_attached_one(workdir: Path) -> None:
    verdict = verdict_of(forwarded(ENTERPRISE, "申报材料", rar("missing_proof.rar")), workdir)
    assert [(p.code, p.role) for p in verdict.problems] == [(Code.MISSING_DOCUMENT, "proof")]


# -- outcome precedence -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "outcome"),
    [
        ((), Outcome.ACCEPTED),
        ((Code.LATE,), Outcome.REJECTED),
        ((Code.MISSING_DOCUMENT, Code.UNKNOWN_ENTERPRISE), Outcome.REJECTED),
        ((Code.UNSAFE_ARCHIVE,), Outcome.REVIEW),
        ((Code.ATTACHMENT_LINK,), Outcome.REVIEW),
        ((Code.NOT_A_SUBMISSION,), Outcome.REVIEW),
        ((Code.LATE, Code.UNSAFE_ARCHIVE), Outcome.REVIEW),
        ((Code.UNKNOWN_ENTERPRISE, Code.ATTACHMENT_LINK), Outcome.REVIEW),
        ((Code.BOUNCE,), Outcome.IGNORED),
        ((Code.AUTO_REPLY,), Outcome.IGNORED),
        ((Code.BULK,), Outcome.IGNORED),
        ((Code.BOUNCE, Code.UNSAFE_ARCHIVE, Code.LATE), Outcome.IGNORED),
        ((Code.UNREADABLE_MESSAGE,), Outcome.REJECTED),
    ],
)
def test_ignored_beats_review_beats_rejected_beats_accepted(codes: tuple[Code, ...], outcome: Outcome) -> None:
    problems = [Problem(code) for code in codes]
    assert outcome_of(problems) is outcome
    assert outcome_of(reversed(problems)) is outcome
    assert Verdict(None, tuple(problems)).outcome is outcome


ISSUE_OUTCOMES = {
    Outcome.IGNORED: {Code.BOUNCE, Code.AUTO_REPLY, Code.BULK},
    Outcome.REVIEW: {Code.ATTACHMENT_LINK, Code.UNSAFE_ARCHIVE, Code.NOT_A_SUBMISSION},
    Outcome.REJECTED: {
        Code.UNREADABLE_MESSAGE,
        Code.UNKNOWN_ENTERPRISE,
        Code.LATE,
        Code.NO_ATTACHMENT,
        Code.NOT_RAR,
        Code.TOO_LARGE,
        Code.ENCRYPTED_ARCHIVE,
        Code.INCOMPLETE_ARCHIVE,
        Code.CORRUPT_ARCHIVE,
        Code.ARCHIVE_NAME_MISMATCH,
        Code.MISSING_DOCUMENT,
        Code.NOT_WORD_DOCUMENT,
        Code.INVALID_DOCUMENT,
    },
}


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(code, outcome) for outcome, codes in ISSUE_OUTCOMES.items() for code in sorted(codes)],
)
def test_each_code_of_the_call_alone_leads_to_its_outcome(code: Code, outcome: Outcome) -> None:
    assert outcome_of([Problem(code)]) is outcome


def test_a_message_that_takes_longer_than_its_budget_goes_to_a_person(workdir: Path) -> None:
    rules = CallRules(judging_seconds=0.0)
    verdict = verdict_of(valid_submission(), workdir, rules=rules)
    assert verdict.codes == {Code.JUDGING_TIMEOUT}
    assert verdict.outcome is Outcome.REVIEW
