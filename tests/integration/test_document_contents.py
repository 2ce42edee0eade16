"""What the documents say (issue 11): real archives of real Word files, read in the isolated reader.

The fixtures (tests/fixtures/documents/, built by make_document_fixtures.py) are whole submissions: a stamped
.docx and .doc form naming 济南明湖软件科技有限公司, a form without a seal, 青岛's package sharing a proof
file and most of a write-up with 济南's, and a form whose text needs far more memory than a real one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES, SHANGHAI, submission
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.app.queries import copies, enterprise_rows, ledger
from daemon.campaign import DEFAULT_CALL, Call, CallRules, DocumentLimits, SealPolicy
from daemon.domain import Code, CopyKind, Outcome, RosterEntry, SealStatus, Verdict
from daemon.intake.context import Context
from daemon.intake.match import Roster
from daemon.pipeline import judge
from daemon.service.recorder import Recorder
from daemon.service.roster_sync import import_roster
from daemon.staff import digest, export, workbook
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database

DOCUMENTS = FIXTURES / "documents"
JINAN, QINGDAO, YANTAI = "济南明湖软件科技有限公司", "青岛蓝海陶瓷有限公司", "烟台蓝海船舶装备有限公司"
ROSTER = [RosterEntry(JINAN, "济南"), RosterEntry(QINGDAO, "青岛"), RosterEntry(YANTAI, "烟台")]
RULES = CallRules(calls=(Call(deadline=None),))
TITLE = "数字化质量管控实践"


def sent(enterprise: str, fixture: str, sender: str = "ops@example.cn") -> bytes:
    return submission(enterprise, [(f"{enterprise}.rar", (DOCUMENTS / fixture).read_bytes())], sender=sender)


def verdict_of(raw: bytes, workdir: Path, rules: CallRules = RULES) -> Verdict:
    context = Context(rules, rosters={DEFAULT_CALL: Roster(ROSTER)})
    return judge(raw, context=context, workdir=workdir).verdict


def codes(verdict: Verdict) -> set[Code]:
    return {p.code for p in verdict.problems}


@pytest.mark.parametrize(("fixture", "form_name"), [("docx-form.rar", "申报书.docx"), ("doc-form.rar", "申报书.doc")])
def test_a_stamped_form_naming_its_sender_is_accepted_with_its_seal_and_title(
    fixture: str, form_name: str, workdir: Path
) -> None:
    verdict = verdict_of(sent(JINAN, fixture), workdir)

    assert verdict.outcome is Outcome.ACCEPTED
    assert codes(verdict) == set()
    package = verdict.package
    assert package is not None
    assert package.seal is not None
    assert (package.seal.status, package.seal.document) == (SealStatus.FOUND, form_name)
    assert package.seal.picture is not None
    assert package.title == TITLE
    form, write_up, proof = package.documents
    assert form.contents is not None and form.contents.seal is SealStatus.FOUND
    assert form.contents.words is not None and form.contents.words > 50
    assert write_up.contents is not None and write_up.contents.words is not None and write_up.contents.words > 2000
    assert write_up.contents.signature  # kept to find near-identical write-ups of other enterprises
    assert proof.contents is not None and proof.contents.pictures == 0 and proof.contents.signature is None


def test_a_form_without_a_seal_is_accepted_with_a_note_by_default(workdir: Path) -> None:
    verdict = verdict_of(sent(JINAN, "unstamped.rar"), workdir)

    assert verdict.outcome is Outcome.ACCEPTED
    [seal] = [p for p in verdict.problems if p.code is Code.SEAL_NOT_FOUND]
    assert seal.is_note and seal.role == "application_form"
    assert verdict.package is not None and verdict.package.seal is not None
    assert verdict.package.seal.status is SealStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [(SealPolicy.REVIEW, Outcome.REVIEW), (SealPolicy.REJECT, Outcome.REJECTED), (SealPolicy.OFF, Outcome.ACCEPTED)],
)
def test_what_a_form_without_a_seal_gets_is_the_calls_setting(
    policy: SealPolicy, outcome: Outcome, workdir: Path
) -> None:
    verdict = verdict_of(sent(JINAN, "unstamped.rar"), workdir, replace(RULES, seal=policy))

    assert verdict.outcome is outcome
    assert (Code.SEAL_NOT_FOUND in codes(verdict)) is (policy is not SealPolicy.OFF)
    assert verdict.package is not None
    assert (verdict.package.seal is None) is (policy is SealPolicy.OFF)


def test_a_form_naming_another_enterprise_of_the_roster_goes_to_a_person(workdir: Path) -> None:
    """烟台's archive holding 济南's files: the form names 济南, not the sender."""
    verdict = verdict_of(sent(YANTAI, "docx-form.rar"), workdir)

    assert verdict.outcome is Outcome.REVIEW
    [foreign] = [p for p in verdict.problems if p.code is Code.FOREIGN_DOCUMENT]
    assert (foreign.detail, foreign.enterprise) == (JINAN, JINAN)


def test_a_form_naming_nobody_of_the_roster_is_a_note_for_staff_only(workdir: Path) -> None:
    roster = [RosterEntry(QINGDAO, "青岛"), RosterEntry(YANTAI, "烟台")]
    context = Context(RULES, rosters={DEFAULT_CALL: Roster(roster)})
    raw = sent(QINGDAO, "unstamped.rar")
    verdict = judge(raw, context=context, workdir=workdir).verdict

    assert verdict.outcome is Outcome.ACCEPTED
    assert Code.FORM_NAMES_NOBODY in codes(verdict)


def test_a_document_that_needs_too_much_memory_goes_to_a_person_and_the_next_is_judged(workdir: Path) -> None:
    # a reader's child starts at about 435 MB of address space: reading the hog takes 500 MB more, a form 130 MB
    tight = replace(RULES, document_limits=DocumentLimits(timeout_seconds=120, memory_bytes=768 << 20))

    hog = verdict_of(sent(JINAN, "memory-hog.rar"), workdir, tight)

    assert hog.outcome is Outcome.REVIEW
    [unreadable] = [p for p in hog.problems if p.code is Code.UNREADABLE_DOCUMENT]
    assert unreadable.role == "application_form"
    assert "申报书.docx" in (unreadable.detail or "")
    assert verdict_of(sent(JINAN, "docx-form.rar"), workdir, tight).outcome is Outcome.ACCEPTED


# -- copies across enterprises, and what reviewers see ---------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    with Session(engine) as session:
        import_roster(session, ROSTER, DEFAULT_CALL)
        session.commit()
    yield engine
    engine.dispose()


def test_the_same_proof_file_and_a_near_identical_write_up_are_flagged_on_both_never_rejected(
    engine: Engine, tmp_path: Path
) -> None:
    recorder = Recorder(engine, BlobStore(tmp_path / "files"), RULES)
    assert recorder.record(sent(JINAN, "docx-form.rar", "ops@jinan.cn"), "jinan.eml").outcome is Outcome.ACCEPTED
    assert recorder.record(sent(QINGDAO, "copied.rar", "ops@qingdao.cn"), "qd.eml").outcome is Outcome.ACCEPTED
    assert recorder.record(sent(YANTAI, "doc-form.rar", "ops@yantai.cn"), "yt.eml").outcome is Outcome.REVIEW

    with Session(engine) as session:
        found = sorted(copies(session, RULES), key=lambda c: c.kind)

    assert [(c.kind, c.role, c.enterprise, c.other) for c in found] == [
        (CopyKind.SAME_FILE, "proof", JINAN, QINGDAO),
        (CopyKind.SIMILAR_TEXT, "experience", JINAN, QINGDAO),
    ]
    same, similar = found
    assert (same.document, same.other_document, same.similarity) == ("证明材料.docx", "证明材料.docx", 1.0)
    assert RULES.similar_texts <= similar.similarity < 1.0
    assert similar.facing(similar.other_id).enterprise == QINGDAO


def test_the_title_the_form_gives_reaches_the_enterprises_row(engine: Engine, tmp_path: Path) -> None:
    recorder = Recorder(engine, BlobStore(tmp_path / "files"), RULES)
    recorder.record(sent(JINAN, "docx-form.rar"), "jinan.eml")

    with Session(engine) as session:
        rows = {row.name: row for row in enterprise_rows(session)}

    assert rows[JINAN].form_title == TITLE
    assert rows[JINAN].seal is SealStatus.FOUND
    assert rows[QINGDAO].form_title is None


@pytest.fixture
def shared(engine: Engine, tmp_path: Path) -> BlobStore:
    """济南's stamped package and 青岛's, which shares its proof file and most of its write-up."""
    blobs = BlobStore(tmp_path / "files")
    recorder = Recorder(engine, blobs, RULES)
    recorder.record(sent(JINAN, "docx-form.rar", "ops@jinan.cn"), "jinan.eml")
    recorder.record(sent(QINGDAO, "copied.rar", "ops@qingdao.cn"), "qd.eml")
    return blobs


def test_the_workbook_gives_reviewers_the_title_the_seal_the_lengths_and_the_copies(
    engine: Engine, shared: BlobStore
) -> None:
    with Session(engine) as session:
        book = load_workbook(io.BytesIO(workbook.build(ledger(session, RULES), RULES)))
    header = [cell.value for cell in book.worksheets[0][1]]
    rows = {
        row[2]: dict(zip(header, row, strict=True)) for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)
    }

    jinan, qingdao = rows[JINAN], rows[QINGDAO]
    assert (jinan["质量标杆名称"], jinan["公章"]) == (TITLE, "已识别到公章")
    assert qingdao["质量标杆名称"] == "陶瓷釉面缺陷在线检测实践"
    assert str(jinan["材料字数与图片"]).startswith("申报书 ")
    assert "1 张图片" in str(jinan["材料字数与图片"]) and "典型经验材料 " in str(jinan["材料字数与图片"])
    assert f"证明材料与“{QINGDAO}”的完全相同（同一文件）" in str(jinan["雷同提示"])
    assert f"典型经验材料与“{QINGDAO}”的高度相似" in str(jinan["雷同提示"])
    assert f"证明材料与“{JINAN}”的完全相同（同一文件）" in str(qingdao["雷同提示"])
    assert rows[YANTAI]["雷同提示"] is None


def test_the_digest_lists_the_copies_and_the_export_names_file_the_facts(
    engine: Engine, shared: BlobStore, tmp_path: Path
) -> None:
    with Session(engine) as session:
        found = digest.gather(session, RULES, "质量标杆", datetime(2022, 7, 1, 8, 30, tzinfo=SHANGHAI))
        export.export(session, shared, RULES, tmp_path / "out", lambda *step: None)

    texts = [item["text"] for item in found.context["copies"]]
    assert len(texts) == 2 and all(QINGDAO in text for text in texts)
    assert {item["enterprise"] for item in found.context["copies"]} == {JINAN}
    lines = [line.split("\t") for line in (tmp_path / "out" / export.NAMES).read_text(encoding="utf-8").splitlines()]
    named = {(row[3], row[4]): dict(zip(lines[0], row, strict=True)) for row in lines[1:]}
    form = named[(JINAN, "申报书.docx")]
    assert (form["质量标杆名称"], form["图片数"], form["公章"]) == (TITLE, "1", "已识别到公章")
    assert int(named[(JINAN, "典型经验材料.docx")]["字数"]) > 2000
