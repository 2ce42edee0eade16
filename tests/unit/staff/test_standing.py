"""Where each roster enterprise stands (issue 4, point 1), read from a real database: SQLite and PostgreSQL.

已受理 when any package is accepted (with the count of versions), else 待人工 when a `review` package is still
undecided, else 已退回 when it sent something, else 未提交. A person's decision overrides the automatic verdict
while the history keeps both; an accepted package from an address that is not the roster's contact is flagged.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RAR, RECEIVED, ROSTER_ROWS, SHANGHAI, rar, submission
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from daemon.app.actions import decide
from daemon.app.errors import ActionError
from daemon.app.queries import enterprise_rows, message_views, messages_about, review_count, review_queue
from daemon.app.views import EnterpriseRow, MessageView, Standing, reference
from daemon.campaign import DEFAULT_CALL, Call, CallRules
from daemon.domain import Outcome, RosterEntry
from daemon.render import Renderer
from daemon.service.recorder import Recorder
from daemon.service.replies import ReplyPlanner
from daemon.service.roster_sync import RosterChange, import_roster
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.storage.models import Decision, Enterprise, MessageRecord, OutboxItem, PackageRecord, Submission

DEADLINE = datetime(2022, 7, 5, 23, 59, 59, tzinfo=SHANGHAI)
COLLEAGUE = "keji@gxt.shandong.gov.cn"
"""A colleague forwarding an enterprise's package: never auto-judged, a person decides (`review`)."""
RULES = CallRules(calls=(Call(deadline=DEADLINE),), review_senders=("gxt.shandong.gov.cn",))
DECIDED = datetime(2022, 7, 1, 10, 0, tzinfo=SHANGHAI)
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
ZIBO = "淄博鲁中陶瓷有限责任公司"
ROWS = [*ROSTER_ROWS, ("淄博", ZIBO, "陶瓷窑炉智能质量管控", "赵工", "13863100005", "luzhong_cc@126.com")]
CONTACT = {row[1]: row[5] for row in ROWS}


def entries(rows: list[tuple[str, ...]]) -> list[RosterEntry]:
    return [RosterEntry(row[1], row[0], *row[2:]) for row in rows]


def load_roster(engine: Engine, rows: list[tuple[str, ...]] = ROWS) -> RosterChange:
    with Session(engine) as session:
        change = import_roster(session, entries(rows), DEFAULT_CALL)
        session.commit()
    return change


def package(name: str, fixture: str = "valid.rar", *, sender: str | None = None, body: str = "附件为申报材料") -> bytes:
    """A submission of `fixture` named after `name`, from `name`'s roster contact unless told otherwise."""
    return submission(name, [(f"{name}.rar", rar(fixture))], sender=sender or CONTACT[name], body=body)


def link_mail(name: str, *, sender: str | None = None) -> bytes:
    """A submission whose archive is a QQ 超大附件 download link: a person must decide it (`review`)."""
    return submission(name, sender=sender or CONTACT[name], body=f"材料较大，已用超大附件发送：{LINK}")


def forwarded(name: str, fixture: str = "valid.rar") -> bytes:
    """`name`'s package forwarded by a colleague: a `review` message with its documents on record."""
    return package(name, fixture, sender=COLLEAGUE, body="转发企业的申报材料")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def recorder(engine: Engine, tmp_path: Path) -> Recorder:
    load_roster(engine)
    return Recorder(engine, BlobStore(tmp_path / "files"), RULES)


@pytest.fixture
def planner() -> ReplyPlanner:
    return ReplyPlanner(Renderer("山东省科技厅 <kejichu2019@shandong.cn>"), RULES, "2022年质量标杆", 10)


def statuses(engine: Engine) -> dict[str, EnterpriseRow]:
    with Session(engine) as session:
        return {s.name: s for s in enterprise_rows(session)}


def history(engine: Engine, name: str) -> list[MessageView]:
    """Every message about the enterprise, oldest first, with the outcome that counts."""
    with Session(engine) as session:
        return messages_about(session, statuses(engine)[name].enterprise_id)


def view(engine: Engine, record_id: int) -> MessageView:
    with Session(engine) as session:
        [found] = message_views(session, ids=[record_id])
        return found


def package_of(engine: Engine, record_id: int) -> int:
    """The id of the one package of an enterprise's message."""
    with Session(engine) as session:
        [found] = session.exec(select(PackageRecord).where(PackageRecord.message_id == record_id)).all()
        assert found.id is not None
        return found.id


def rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)))  # type: ignore[attr-defined]


def person_decides(
    engine: Engine,
    planner: ReplyPlanner,
    recorder: Recorder,
    record_id: int,
    accept: bool,
    note: str,
    moment: datetime = DECIDED,
) -> OutboxItem:
    with Session(engine) as session:
        done = decide(
            session, planner, recorder, reference(record_id), accept=accept, note=note, actor="staff", moment=moment
        )
        session.commit()
        assert done.reply is not None
        item = session.get(OutboxItem, done.reply.id)
        assert item is not None
        return item


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def plain_text(raw: bytes) -> str:
    body = parsed(raw).get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# -- the four standings -------------------------------------------------------------------------------------


def test_each_roster_enterprise_has_one_of_the_four_standings_in_roster_order(
    recorder: Recorder, engine: Engine
) -> None:
    recorder.record(package(JINAN), "1.eml")
    recorder.record(link_mail(QINGDAO), "2.eml")
    recorder.record(package(LINYI, "missing_proof.rar"), "3.eml")

    found = statuses(engine)

    assert list(found) == [JINAN, QINGDAO, LINYI, ZIBO]
    assert {name: s.standing for name, s in found.items()} == {
        JINAN: Standing.ACCEPTED,
        QINGDAO: Standing.REVIEW,
        LINYI: Standing.REJECTED,
        ZIBO: Standing.MISSING,
    }
    assert [found[name].standing.value for name in found] == ["已受理", "待人工", "已退回", "未提交"]
    assert {name: s.versions for name, s in found.items()} == {JINAN: 1, QINGDAO: 0, LINYI: 0, ZIBO: 0}
    assert {name: s.packages for name, s in found.items()} == {JINAN: 1, QINGDAO: 1, LINYI: 1, ZIBO: 0}
    assert (found[JINAN].last_received, found[ZIBO].last_received) == (RECEIVED, None)


def test_accepted_counts_every_accepted_version_and_outranks_later_rejections_and_reviews(
    recorder: Recorder, engine: Engine
) -> None:
    first = recorder.record(package(JINAN), "1.eml")
    recorder.record(package(JINAN, "missing_proof.rar", body="第二封"), "2.eml")
    third = recorder.record(package(JINAN, "doc_format.rar", body="第三封"), "3.eml")
    recorder.record(link_mail(JINAN), "4.eml")

    jinan = statuses(engine)[JINAN]

    assert (jinan.standing, jinan.versions, jinan.packages) == (Standing.ACCEPTED, 2, 4)
    assert jinan.latest_accepted is not None
    assert jinan.latest_accepted == package_of(engine, third.record_id) != package_of(engine, first.record_id)
    assert jinan.open_problems == ()  # an accepted enterprise has nothing left to fix


def test_an_undecided_review_message_outranks_rejected_ones(recorder: Recorder, engine: Engine) -> None:
    recorder.record(package(QINGDAO, "pdf_form.rar"), "1.eml")
    recorder.record(link_mail(QINGDAO), "2.eml")

    qingdao = statuses(engine)[QINGDAO]

    assert (qingdao.standing, qingdao.versions) == (Standing.REVIEW, 0)
    assert [m.outcome for m in history(engine, QINGDAO)] == [Outcome.REJECTED, Outcome.REVIEW]
    assert [p.code.value for p in qingdao.open_problems] == ["attachment_link"]


def test_rejected_means_it_sent_something_and_nothing_was_accepted(recorder: Recorder, engine: Engine) -> None:
    recorder.record(package(LINYI, "missing_proof.rar"), "1.eml")
    recorder.record(package(LINYI, "encrypted.rar", body="第二封"), "2.eml")

    linyi = statuses(engine)[LINYI]

    assert (linyi.standing, linyi.versions, linyi.packages) == (Standing.REJECTED, 0, 2)
    assert linyi.latest_accepted is None
    assert [p.code.value for p in linyi.open_problems] == ["encrypted_archive"]  # the latest message's


def test_a_set_of_volumes_still_coming_is_pending_until_the_rest_arrives(recorder: Recorder, engine: Engine) -> None:
    def volumes(*numbers: int) -> bytes:
        parts = [(f"{JINAN}.part{n}.rar", rar(f"volumes.part{n}.rar")) for n in numbers]
        return submission(JINAN, parts, sender=CONTACT[JINAN], body=f"分卷 {numbers}")

    first = recorder.record(volumes(1), "1.eml")

    assert first.outcome is Outcome.PENDING
    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.standing.value, jinan.versions) == (Standing.PENDING, "待补齐", 0)
    assert [p.code.value for p in jinan.open_problems] == ["volumes_pending"]

    rest = recorder.record(volumes(2, 3), "2.eml")

    assert rest.outcome is Outcome.ACCEPTED
    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.versions) == (Standing.ACCEPTED, 1)


def test_an_enterprise_whose_only_mail_was_an_auto_reply_has_not_submitted(recorder: Recorder, engine: Engine) -> None:
    recorder.record(submission(f"自动回复：{ZIBO}", sender=CONTACT[ZIBO], body="您好，我已休假。"), "1.eml")

    zibo = statuses(engine)[ZIBO]

    assert (zibo.standing, zibo.packages, zibo.last_received, zibo.latest_message) == (
        Standing.MISSING,
        0,
        None,
        None,
    )


def test_the_city_filter_keeps_only_that_citys_enterprises(recorder: Recorder, engine: Engine) -> None:
    with Session(engine) as session:
        found = enterprise_rows(session, city="青岛")

    assert [s.name for s in found] == [QINGDAO]


# -- a person's decision overrides ---------------------------------------------------------------------------


def test_accepting_a_review_message_makes_the_enterprise_accepted_with_a_submission_version(
    recorder: Recorder, engine: Engine, planner: ReplyPlanner
) -> None:
    review = recorder.record(forwarded(QINGDAO), "1.eml")
    assert review.outcome is Outcome.REVIEW
    assert statuses(engine)[QINGDAO].standing is Standing.REVIEW

    reply = person_decides(engine, planner, recorder, review.record_id, True, "企业委托转发，材料齐全")

    qingdao = statuses(engine)[QINGDAO]
    assert (qingdao.standing, qingdao.versions) == (Standing.ACCEPTED, 1)
    [version] = rows(engine, Submission)
    [enterprise] = [e for e in rows(engine, Enterprise) if e.name == QINGDAO]
    assert (version.message_id, version.enterprise_id, version.version) == (review.record_id, enterprise.id, 1)
    [decision] = rows(engine, Decision)
    assert (decision.message_id, decision.package_id, decision.outcome, decision.note, decision.actor) == (
        review.record_id,
        package_of(engine, review.record_id),
        "accepted",
        "企业委托转发，材料齐全",
        "staff",
    )
    [message] = rows(engine, MessageRecord)
    assert message.outcome == "review"  # the automatic verdict stays in the history
    assert (reply.kind, reply.recipient, reply.state) == ("receipt", COLLEAGUE, "queued")
    assert "企业委托转发，材料齐全" in plain_text(reply.raw)


def test_a_view_read_in_the_session_that_changed_something_sees_the_change(recorder: Recorder, engine: Engine) -> None:
    """The views read rows straight from the driver, past the ORM's autoflush: they flush first themselves."""
    review = recorder.record(forwarded(QINGDAO), "1.eml")
    decided = Decision(
        message_id=review.record_id,
        package_id=package_of(engine, review.record_id),
        outcome=Outcome.ACCEPTED,
        actor="staff",
        decided_at=DECIDED,
    )

    with Session(engine) as session:
        session.add(decided)
        [qingdao] = [row for row in enterprise_rows(session) if row.name == QINGDAO]
        [message] = message_views(session, ids=[review.record_id])

    assert qingdao.standing is Standing.ACCEPTED
    assert message.outcome is Outcome.ACCEPTED and message.decisions[-1].actor == "staff"


def waiting(engine: Engine) -> tuple[list[int], int]:
    """The review queue's message ids, and the count the 总览 page shows."""
    with Session(engine) as session:
        return [v.id for v in review_queue(session)], review_count(session)


def test_the_review_queue_holds_undecided_review_messages_and_its_count_agrees(
    recorder: Recorder, engine: Engine, planner: ReplyPlanner
) -> None:
    forwarded_package = recorder.record(forwarded(QINGDAO), "1.eml")
    link = recorder.record(link_mail(LINYI), "2.eml")
    accepted = recorder.record(package(JINAN), "3.eml")
    assert (forwarded_package.outcome, link.outcome, accepted.outcome) == (Outcome.REVIEW,) * 2 + (Outcome.ACCEPTED,)
    assert waiting(engine) == ([forwarded_package.record_id, link.record_id], 2)

    person_decides(engine, planner, recorder, forwarded_package.record_id, True, "企业委托转发，材料齐全")
    assert waiting(engine) == ([link.record_id], 1)  # decided on its one package, though the message says review

    person_decides(engine, planner, recorder, link.record_id, False, "请直接发送附件")
    assert waiting(engine) == ([], 0)


def test_a_download_link_cannot_be_accepted_before_its_archive_is_attached(
    recorder: Recorder, engine: Engine, planner: ReplyPlanner
) -> None:
    review = recorder.record(link_mail(QINGDAO), "1.eml")

    with Session(engine) as session, pytest.raises(ActionError, match="attach"):
        decide(session, planner, recorder, reference(review.record_id), accept=True, note="", actor="", moment=DECIDED)

    assert rows(engine, Decision) == []
    assert rows(engine, Submission) == []
    assert statuses(engine)[QINGDAO].standing is Standing.REVIEW


def test_rejecting_an_accepted_version_removes_it_from_the_count_while_the_history_keeps_both(
    recorder: Recorder, engine: Engine, planner: ReplyPlanner
) -> None:
    first = recorder.record(package(JINAN), "1.eml")
    second = recorder.record(package(JINAN, "doc_format.rar", body="第二版"), "2.eml")
    assert statuses(engine)[JINAN].versions == 2

    reply = person_decides(engine, planner, recorder, second.record_id, False, "证明材料未盖章")

    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.versions) == (Standing.ACCEPTED, 1)
    assert jinan.latest_accepted == package_of(engine, first.record_id)
    decided = view(engine, second.record_id)
    assert decided.outcome is Outcome.REJECTED
    assert [(d.outcome, d.note) for d in decided.decisions] == [(Outcome.REJECTED, "证明材料未盖章")]
    assert decided.packages[0].automatic is Outcome.ACCEPTED
    # the history keeps both: the automatic verdict, its version and the person's decision
    assert [m.outcome for m in rows(engine, MessageRecord)] == ["accepted", "accepted"]
    assert [(s.message_id, s.version) for s in rows(engine, Submission)] == [
        (first.record_id, 1),
        (second.record_id, 2),
    ]
    assert [(d.message_id, d.outcome) for d in rows(engine, Decision)] == [(second.record_id, "rejected")]
    assert (reply.kind, reply.recipient) == ("decision", CONTACT[JINAN])
    assert "证明材料未盖章" in plain_text(reply.raw)

    person_decides(engine, planner, recorder, first.record_id, False, "申报书不是最终版")

    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.versions, jinan.latest_accepted) == (Standing.REJECTED, 0, None)


def test_the_latest_decision_is_the_one_that_counts(recorder: Recorder, engine: Engine, planner: ReplyPlanner) -> None:
    review = recorder.record(forwarded(QINGDAO), "1.eml")
    person_decides(engine, planner, recorder, review.record_id, False, "不是企业本身发送")
    assert statuses(engine)[QINGDAO].standing is Standing.REJECTED

    person_decides(
        engine, planner, recorder, review.record_id, True, "企业确认由同事转发", DECIDED + timedelta(hours=2)
    )

    assert statuses(engine)[QINGDAO].standing is Standing.ACCEPTED
    assert [d.outcome for d in rows(engine, Decision)] == ["rejected", "accepted"]


def test_a_message_that_names_no_enterprise_cannot_be_accepted(
    recorder: Recorder, engine: Engine, planner: ReplyPlanner
) -> None:
    wrong = recorder.record(submission("济南明湖软件科技有限公", [(f"{ENTERPRISE}.rar", rar("valid.rar"))]), "1.eml")

    with Session(engine) as session, pytest.raises(ActionError, match="--enterprise"):
        decide(session, planner, recorder, reference(wrong.record_id), accept=True, note="", actor="", moment=DECIDED)

    assert rows(engine, Decision) == []
    assert rows(engine, Submission) == []
    assert statuses(engine)[JINAN].standing is Standing.MISSING


# -- accepted packages from someone else ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "roster_email", "stranger"),
    [
        ("ops@minghu-soft.cn", "ops@minghu-soft.cn", False),
        ("OPS@Minghu-Soft.CN", "ops@minghu-soft.cn", False),
        ("ops@minghu-soft.cn", " OPS@minghu-soft.cn ", False),
        ("daiban@agency.example.cn", "ops@minghu-soft.cn", True),
        ("daiban@agency.example.cn", "", False),  # no contact to compare with
    ],
)
def test_an_accepted_package_from_an_address_not_the_rosters_contact_is_flagged(
    engine: Engine, tmp_path: Path, sender: str, roster_email: str, stranger: bool
) -> None:
    load_roster(engine, [(*ROSTER_ROWS[0][:5], roster_email), *ROSTER_ROWS[1:]])
    recorder = Recorder(engine, BlobStore(tmp_path / "files"), RULES)

    recorder.record(package(JINAN, sender=sender), "1.eml")

    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.stranger) == (Standing.ACCEPTED, stranger)


def test_the_flag_follows_the_latest_accepted_version(recorder: Recorder, engine: Engine) -> None:
    recorder.record(package(JINAN), "1.eml")
    assert statuses(engine)[JINAN].stranger is False

    recorder.record(package(JINAN, "doc_format.rar", sender="daiban@agency.example.cn"), "2.eml")

    jinan = statuses(engine)[JINAN]
    assert (jinan.versions, jinan.stranger) == (2, True)


def test_a_review_message_from_a_stranger_is_not_flagged_as_an_accepted_stranger(
    recorder: Recorder, engine: Engine
) -> None:
    recorder.record(link_mail(QINGDAO, sender="daiban@agency.example.cn"), "1.eml")

    qingdao = statuses(engine)[QINGDAO]
    assert (qingdao.standing, qingdao.stranger) == (Standing.REVIEW, False)


# -- the roster ----------------------------------------------------------------------------------------------


def test_reimporting_the_roster_updates_contacts_in_place_without_duplicating_rows(
    recorder: Recorder, engine: Engine
) -> None:
    recorder.record(package(JINAN), "1.eml")
    before = {e.name: e.id for e in rows(engine, Enterprise)}
    corrected = [("济南", JINAN, ROWS[0][2], "刘工", "0531-88888888", "liu@minghu-soft.cn"), *ROWS[1:]]

    change = load_roster(engine, corrected)
    again = load_roster(engine, corrected)

    assert change == RosterChange(added=0, updated=1, withdrawn=0)
    assert again == RosterChange(added=0, updated=0, withdrawn=0)
    after = rows(engine, Enterprise)
    assert {e.name: e.id for e in after} == before
    assert len(after) == len(ROWS)
    [jinan_row] = [e for e in after if e.name == JINAN]
    assert (jinan_row.contact, jinan_row.phone, jinan_row.email) == ("刘工", "0531-88888888", "liu@minghu-soft.cn")
    jinan = statuses(engine)[JINAN]
    assert (jinan.standing, jinan.versions) == (Standing.ACCEPTED, 1)  # its mail stays linked
    assert (jinan.contact, jinan.phone, jinan.email) == ("刘工", "0531-88888888", "liu@minghu-soft.cn")
    assert jinan.stranger is True  # ops@ is no longer the roster's contact


def test_a_recheck_keeps_the_archive_staff_attached(recorder: Recorder, engine: Engine, tmp_path: Path) -> None:
    review = recorder.record(link_mail(QINGDAO), "1.eml")
    archive = tmp_path / f"{QINGDAO}.rar"
    shutil.copyfile(RAR / "valid.rar", archive)
    attached = recorder.revise(review.record_id, "attach", extra=[archive])
    assert (attached.old_outcome, attached.new_outcome) == ("review", "accepted")
    assert statuses(engine)[QINGDAO].standing is Standing.ACCEPTED

    recheck = recorder.revise(review.record_id, "recheck")  # e.g. after a roster fix for someone else

    assert recheck.new_outcome == "accepted"
    qingdao = statuses(engine)[QINGDAO]
    assert (qingdao.standing, qingdao.versions) == (Standing.ACCEPTED, 1)
