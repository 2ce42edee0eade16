"""Recording: raw message, archive and documents stored once by SHA-256; rows written once; versions kept.

Also the roster in the database: imports upsert, withdrawn enterprises stay, the file reloads when it changes.
Every test runs on SQLite and on PostgreSQL (`database_url`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import ENTERPRISE, RAR, RECEIVED, ROSTER_ROWS, rar, submission, valid_submission, write_roster
from sqlalchemy import select as select_rows
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from daemon.campaign import DEFAULT_CALL, Call, CallRules
from daemon.demo.servers import wait_until
from daemon.domain import Outcome, RosterEntry
from daemon.intake.match import Roster
from daemon.intake.roster import read_roster
from daemon.service.recorder import Recorder, add_version
from daemon.service.roster_sync import RosterChange, database_rosters, import_roster, refresh_rosters
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database
from daemon.storage.models import (
    AttachmentRecord,
    DocumentRecord,
    Enterprise,
    MessageRecord,
    Nomination,
    PackageRecord,
    ProblemRecord,
    Submission,
)

DEADLINE = datetime(2022, 7, 5, 23, 59, 59, tzinfo=RECEIVED.tzinfo)
ENTRIES = [RosterEntry(row[1], row[0], *row[2:]) for row in ROSTER_ROWS]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def member_hashes(archive: str) -> dict[str, str]:
    """name -> SHA-256 of every file in a committed fixture, read independently of the intake."""
    import rarfile

    with rarfile.RarFile(str(RAR / archive)) as opened:
        return {info.filename: sha256(opened.read(info)) for info in opened.infolist() if info.is_file()}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "files")


def database_roster(engine: Engine) -> Roster | None:
    with Session(engine) as session:
        return database_rosters(session).get(DEFAULT_CALL)


def with_roster(engine: Engine, entries: list[RosterEntry] = ENTRIES) -> Roster:
    """Import the roster as `shenbao roster import` does and read it back for matching."""
    with Session(engine) as session:
        import_roster(session, entries, DEFAULT_CALL)
        session.commit()
    roster = database_roster(engine)
    assert roster is not None
    return roster


@pytest.fixture
def recorder(engine: Engine, blobs: BlobStore) -> Recorder:
    with_roster(engine)
    return Recorder(engine, blobs, CallRules(calls=(Call(deadline=DEADLINE),)))


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, by primary key."""
    with engine.connect() as connection:
        return {
            table.name: [tuple(row) for row in connection.execute(select_rows(table).order_by(*table.primary_key))]
            for table in SQLModel.metadata.sorted_tables
        }


def stored_files(blobs: BlobStore) -> dict[str, str]:
    """Every file in the blob store: its name -> the SHA-256 of its content."""
    return {p.name: sha256(p.read_bytes()) for p in blobs.root.rglob("*") if p.is_file()}


def rows(engine: Engine, model: type) -> list:  # type: ignore[type-arg]
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)))  # type: ignore[attr-defined]


# -- recording a message ----------------------------------------------------------------------------------


def test_a_valid_submission_stores_the_raw_message_the_archive_and_the_three_documents(
    recorder: Recorder, blobs: BlobStore
) -> None:
    raw = valid_submission()

    recorder.record(raw, source="inbox/1.eml")

    files = stored_files(blobs)
    expected = {sha256(raw), sha256(rar("valid.rar")), *member_hashes("valid.rar").values()}
    assert set(files) == expected
    assert all(name == content for name, content in files.items())
    assert all(blobs.has(digest) for digest in expected)
    assert blobs.path(sha256(raw)).read_bytes() == raw


def test_a_valid_submission_is_one_accepted_message_row_linked_to_its_enterprise(
    recorder: Recorder, engine: Engine
) -> None:
    raw = valid_submission()

    result = recorder.record(raw, source="inbox/1.eml")

    assert (result.outcome, result.enterprise, result.created) == (Outcome.ACCEPTED, ENTERPRISE, True)
    [message] = rows(engine, MessageRecord)
    [enterprise] = [e for e in rows(engine, Enterprise) if e.name == ENTERPRISE]
    assert message.id == result.record_id
    assert message.raw_sha256 == sha256(raw)
    assert message.raw_size == len(raw)
    assert message.source == "inbox/1.eml"
    assert message.outcome == "accepted"
    [package] = rows(engine, PackageRecord)
    assert (package.message_id, package.enterprise_id, package.enterprise_name) == (
        message.id,
        enterprise.id,
        ENTERPRISE,
    )
    assert (package.call, package.outcome, package.archive_name) == (DEFAULT_CALL, Outcome.ACCEPTED, ENTERPRISE)
    assert message.received_at == RECEIVED
    assert [n.enterprise_id for n in rows(engine, Nomination)].count(enterprise.id) == 1
    assert rows(engine, ProblemRecord) == []


def test_a_valid_submission_records_its_documents_its_archive_and_version_one(
    recorder: Recorder, engine: Engine
) -> None:
    result = recorder.record(valid_submission(), source="inbox/1.eml")

    hashes = member_hashes("valid.rar")
    documents = rows(engine, DocumentRecord)
    assert sorted((d.role, d.name, d.sha256, d.is_word) for d in documents) == sorted(
        [
            ("application_form", "申报书.docx", hashes["申报书.docx"], True),
            ("experience", "典型经验材料.docx", hashes["典型经验材料.docx"], True),
            ("proof", "证明材料.docx", hashes["证明材料.docx"], True),
        ]
    )
    assert {d.message_id for d in documents} == {result.record_id}
    [attachment] = rows(engine, AttachmentRecord)
    assert (attachment.filename, attachment.sha256, attachment.is_archive) == (
        f"{ENTERPRISE}.rar",
        sha256(rar("valid.rar")),
        True,
    )
    [version] = rows(engine, Submission)
    assert (version.message_id, version.version) == (result.record_id, 1)


def test_recording_the_same_bytes_again_changes_nothing(recorder: Recorder, engine: Engine, blobs: BlobStore) -> None:
    raw = valid_submission()
    first = recorder.record(raw, source="inbox/1.eml")
    before, files_before = dump(engine), stored_files(blobs)

    again = recorder.record(raw, source="elsewhere/copy.eml")

    assert again.created is False
    assert (again.record_id, again.outcome, again.enterprise) == (first.record_id, first.outcome, first.enterprise)
    assert dump(engine) == before
    assert stored_files(blobs) == files_before


def test_a_later_valid_submission_from_the_same_enterprise_is_version_two_and_version_one_remains(
    recorder: Recorder, engine: Engine
) -> None:
    first = recorder.record(valid_submission(), source="inbox/1.eml")
    second = recorder.record(
        submission(
            attachments=[(f"{ENTERPRISE}.rar", rar("solid.rar"))],
            body="补充了证明材料，请以此为准。",
            received=RECEIVED + timedelta(days=1),
        ),
        source="inbox/2.eml",
    )

    assert second.created and second.record_id != first.record_id
    versions = [(s.message_id, s.enterprise_id, s.version) for s in rows(engine, Submission)]
    [enterprise] = [e for e in rows(engine, Enterprise) if e.name == ENTERPRISE]
    assert versions == [(first.record_id, enterprise.id, 1), (second.record_id, enterprise.id, 2)]
    assert [m.id for m in rows(engine, MessageRecord)] == [first.record_id, second.record_id]


def test_a_rejected_message_is_no_submission_but_keeps_its_problems_in_order(
    recorder: Recorder, engine: Engine
) -> None:
    raw = submission(
        "济南明湖软件科技有限公",
        [(f"{ENTERPRISE}.rar", rar("missing_proof.rar"))],
        received=DEADLINE + timedelta(minutes=1),
    )

    result = recorder.record(raw, source="inbox/late.eml")

    assert result.outcome is Outcome.REJECTED
    assert rows(engine, Submission) == []
    problems = [(p.message_id, p.position, p.code, p.role, p.suggestion) for p in rows(engine, ProblemRecord)]
    assert problems == [
        (result.record_id, 0, "unknown_enterprise", None, ENTERPRISE),
        (result.record_id, 1, "late", None, None),
        (result.record_id, 2, "missing_document", "proof", None),
    ]
    [message] = rows(engine, MessageRecord)
    [package] = rows(engine, PackageRecord)
    assert (message.outcome, package.enterprise_id) == ("rejected", None)


def test_a_rejected_message_between_two_accepted_ones_takes_no_version(recorder: Recorder, engine: Engine) -> None:
    recorder.record(valid_submission(), source="inbox/1.eml")
    recorder.record(submission(attachments=[(f"{ENTERPRISE}.rar", rar("pdf_form.rar"))]), source="inbox/2.eml")
    third = recorder.record(
        submission(attachments=[(f"{ENTERPRISE}.rar", rar("solid.rar"))], body="第三封"), source="inbox/3.eml"
    )

    assert [(s.message_id, s.version) for s in rows(engine, Submission)][-1] == (third.record_id, 2)


def test_the_same_archive_sent_again_is_accepted_with_a_note_and_takes_no_new_version(
    recorder: Recorder, engine: Engine
) -> None:
    first = recorder.record(valid_submission(), source="inbox/1.eml")
    again = recorder.record(valid_submission(body="再发一次"), source="inbox/2.eml")

    assert again.outcome is Outcome.ACCEPTED
    assert [(s.message_id, s.version) for s in rows(engine, Submission)] == [(first.record_id, 1)]
    assert [p.code for p in rows(engine, ProblemRecord)] == ["same_as_accepted"]


def test_judged_again_the_first_of_two_same_archives_is_no_copy_and_the_second_still_is(
    recorder: Recorder, engine: Engine
) -> None:
    first = recorder.record(valid_submission(), source="inbox/1.eml")
    again = recorder.record(valid_submission(body="再发一次"), source="inbox/2.eml")

    original = recorder.revise(first.record_id, "recheck")
    copy = recorder.revise(again.record_id, "recheck")

    assert (original.changed, original.new_outcome, original.new_codes) == (False, "accepted", "")
    assert (copy.changed, copy.new_outcome, copy.new_codes) == (False, "accepted", "same_as_accepted")
    assert [(s.message_id, s.version) for s in rows(engine, Submission)] == [(first.record_id, 1)]


def test_an_unreadable_message_is_still_recorded_with_its_raw_blob(
    recorder: Recorder, engine: Engine, blobs: BlobStore
) -> None:
    result = recorder.record(b"", source="inbox/empty.eml")

    assert (result.outcome, result.enterprise, result.created) == (Outcome.REJECTED, None, True)
    assert blobs.has(sha256(b""))
    assert blobs.path(sha256(b"")).read_bytes() == b""
    [message] = rows(engine, MessageRecord)
    assert (message.raw_sha256, message.raw_size, message.outcome) == (sha256(b""), 0, "rejected")
    assert [p.code for p in rows(engine, ProblemRecord)] == ["unreadable_message"]
    assert rows(engine, Submission) == []


def test_without_a_roster_the_subject_becomes_an_enterprise_not_in_the_roster(engine: Engine, blobs: BlobStore) -> None:
    recorder = Recorder(engine, blobs, CallRules())

    result = recorder.record(valid_submission(subject=f"回复：{ENTERPRISE}"), source="inbox/1.eml")

    assert (result.outcome, result.enterprise) == (Outcome.ACCEPTED, ENTERPRISE)
    [enterprise] = rows(engine, Enterprise)
    assert enterprise.name == ENTERPRISE
    assert rows(engine, Nomination) == []
    [package] = rows(engine, PackageRecord)
    assert package.enterprise_id == enterprise.id
    assert database_roster(engine) is None


def test_an_enterprise_first_seen_in_mail_joins_the_roster_when_a_table_lists_it(
    engine: Engine, blobs: BlobStore
) -> None:
    Recorder(engine, blobs, CallRules()).record(valid_submission(), source="inbox/1.eml")

    with Session(engine) as session:
        change = import_roster(session, ENTRIES, DEFAULT_CALL)
        session.commit()

    assert (change.added, change.updated) == (3, 0)
    named = [e for e in rows(engine, Enterprise) if e.name == ENTERPRISE]
    assert [e.contact for e in named] == ["张工"]
    assert len([n for n in rows(engine, Nomination) if n.enterprise_id == named[0].id]) == 1


# -- the roster in the database --------------------------------------------------------------------------


def import_entries(engine: Engine, entries: list[RosterEntry]) -> RosterChange:
    with Session(engine) as session:
        change = import_roster(session, entries, DEFAULT_CALL)
        session.commit()
    return change


def enterprises(engine: Engine) -> list[tuple[int | None, str, str, bool]]:
    listed = {n.enterprise_id for n in rows(engine, Nomination)}
    return [(e.id, e.name, e.phone, e.id in listed) for e in rows(engine, Enterprise)]


def test_importing_the_same_table_twice_does_not_duplicate_enterprises(engine: Engine) -> None:
    first = import_entries(engine, ENTRIES)
    before = enterprises(engine)

    second = import_entries(engine, ENTRIES)

    assert first == RosterChange(added=3, updated=0, withdrawn=0)
    assert second == RosterChange(added=0, updated=0, withdrawn=0)
    assert enterprises(engine) == before
    assert len(before) == 3


def test_a_corrected_row_updates_the_enterprise_in_place(engine: Engine) -> None:
    import_entries(engine, ENTRIES)
    [before] = [row for row in enterprises(engine) if row[1].startswith("临沂")]
    # The office corrects the phone and types the brackets half-width: the same enterprise (same key).
    corrected = [*ENTRIES[:2], replace(ENTRIES[2], name="临沂沂蒙新材料科技(集团)有限公司", phone="0539-8888888")]

    change = import_entries(engine, corrected)

    assert change == RosterChange(added=0, updated=1, withdrawn=0)
    [after] = [row for row in enterprises(engine) if row[1].startswith("临沂")]
    assert after == (before[0], "临沂沂蒙新材料科技(集团)有限公司", "0539-8888888", True)
    assert len(enterprises(engine)) == 3


def test_an_enterprise_dropped_from_the_table_is_kept_but_no_longer_matched(engine: Engine) -> None:
    import_entries(engine, ENTRIES)

    change = import_entries(engine, ENTRIES[:2])

    assert change == RosterChange(added=0, updated=0, withdrawn=1)
    dropped = [row for row in enterprises(engine) if row[1] == ENTRIES[2].name]
    assert [row[3] for row in dropped] == [False]
    roster = database_roster(engine)
    assert roster is not None
    assert roster.find(ENTRIES[2].name) is None
    assert roster.find(ENTERPRISE) is not None


def test_refresh_roster_loads_the_file_only_when_its_content_changes(tmp_path: Path, engine: Engine) -> None:
    path = write_roster(tmp_path / "roster.xlsx")

    paths = {DEFAULT_CALL: path}
    first = refresh_rosters(engine, paths)
    unchanged = refresh_rosters(engine, paths)
    city, name, title, contact, _, email = ROSTER_ROWS[2]
    write_roster(path, [*ROSTER_ROWS[:2], (city, name, title, contact, "0539-8888888", email)])
    changed = refresh_rosters(engine, paths)

    assert first == {DEFAULT_CALL: RosterChange(added=3, updated=0, withdrawn=0)}
    assert unchanged == {}
    assert changed == {DEFAULT_CALL: RosterChange(added=0, updated=1, withdrawn=0)}
    assert refresh_rosters(engine, paths) == {}
    roster = database_roster(engine)
    assert roster is not None
    assert [e.phone for e in roster.entries if e.city == "临沂"] == ["0539-8888888"]


def test_refresh_roster_without_a_roster_file_does_nothing(engine: Engine) -> None:
    before = dump(engine)

    assert refresh_rosters(engine, {}) == {}
    assert dump(engine) == before


def test_the_roster_read_from_a_file_matches_the_imported_one(tmp_path: Path, engine: Engine) -> None:
    entries = read_roster(write_roster(tmp_path / "roster.xlsx"))

    import_entries(engine, entries)

    roster = database_roster(engine)
    assert roster is not None
    assert sorted(roster.entries, key=lambda e: e.name) == sorted(entries, key=lambda e: e.name)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_acceptances_at_once_take_two_versions_on_postgresql(recorder: Recorder, engine: Engine) -> None:
    """The daemon and a staff command accepting at the same moment: the second waits for the first's row lock
    instead of counting the same versions (SQLite lets one writer in at a time anyway)."""
    first = recorder.record(submission(ENTERPRISE, body="第一封"), source="1.eml").record_id
    second = recorder.record(submission(ENTERPRISE, body="第二封"), source="2.eml").record_id
    packages = {p.message_id: p for p in rows(engine, PackageRecord)}
    errors: list[BaseException] = []

    def accept_second() -> None:
        try:
            with Session(engine) as other:
                add_version(other, packages[second])
                other.commit()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    with Session(engine) as session:
        add_version(session, packages[first])
        session.flush()
        thread = threading.Thread(target=accept_second)
        thread.start()
        wait_until(lambda: waiting_on_a_lock(engine), 30, "the second acceptance to wait for the row lock")
        session.commit()
    thread.join(30)

    assert errors == []
    assert sorted((s.message_id, s.version) for s in rows(engine, Submission)) == [(first, 1), (second, 2)]


def waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(found)
