"""A message judged ahead of its turn (service/foresight.py) is recorded with that judgement only when judging
it in its turn would give the same: the same rosters, the same answers from the mailbox's past, in time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import ENTERPRISE, RECEIVED, ROSTER_ROWS, rar, submission, valid_submission
from sqlalchemy.engine import Engine
from sqlmodel import Session

from daemon.campaign import DEFAULT_CALL, Call, CallRules
from daemon.domain import Code, Outcome, RosterEntry
from daemon.pipeline import judge
from daemon.service import recorder as recording
from daemon.service.foresight import Foresight
from daemon.service.recorder import Recorder
from daemon.service.roster_sync import import_roster
from daemon.storage.blobs import BlobStore
from daemon.storage.db import open_database

RULES = CallRules(calls=(Call(deadline=datetime(2022, 7, 5, 23, 59, 59, tzinfo=RECEIVED.tzinfo)),))
ENTRIES = [RosterEntry(row[1], row[0], *row[2:]) for row in ROSTER_ROWS]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    with Session(engine) as session:
        import_roster(session, ENTRIES, DEFAULT_CALL)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subject of every message the recorder judges, in order."""
    subjects: list[str] = []

    def counted(source: Path, **kwargs: Any) -> Any:
        found = judge(source, **kwargs)
        subjects.append(found.message.subject if found.message else "")
        return found

    monkeypatch.setattr(recording, "judge", counted)
    return subjects


def recorder_for(engine: Engine, tmp_path: Path, rules: CallRules = RULES) -> Recorder:
    return Recorder(engine, BlobStore(tmp_path / "files"), rules)


def volume(number: int) -> bytes:
    return submission(attachments=[(f"{ENTERPRISE}.part{number}.rar", rar(f"volumes.part{number}.rar"))])


def ahead_of(recorder: Recorder, raw: bytes) -> tuple[str, Foresight]:
    sha256 = recorder.blobs.put_bytes(raw)
    return sha256, recorder.foresee(sha256, RECEIVED, None)()


def test_a_message_judged_ahead_is_recorded_with_that_judgement(
    engine: Engine, tmp_path: Path, judged: list[str]
) -> None:
    recorder = recorder_for(engine, tmp_path)
    sha256, ahead = ahead_of(recorder, valid_submission())
    assert ahead.holds(recorder.context())
    assert work_left(recorder) == []  # the files it read are in the blob store already

    recorded = recorder.record_stored(sha256, "1.eml", RECEIVED, ahead=ahead)

    assert recorded.outcome is Outcome.ACCEPTED and recorded.created
    assert judged == [ENTERPRISE]  # judged once, ahead
    assert work_left(recorder) == []


def test_a_volume_judged_before_the_one_before_it_was_recorded_is_judged_again(
    engine: Engine, tmp_path: Path, judged: list[str]
) -> None:
    recorder = recorder_for(engine, tmp_path)
    first = recorder.blobs.put_bytes(volume(1))
    second, ahead = ahead_of(recorder, replace_message_id(volume(2)))
    assert joined_with(ahead) == ()  # judged alone: nothing to join

    recorder.record_stored(first, "1.eml", RECEIVED)
    assert not ahead.holds(recorder.context())  # the past now answers with the first volume
    again = recorder.foresee(second, RECEIVED, None)()
    recorded = recorder.record_stored(second, "2.eml", ahead=ahead)

    assert len(joined_with(again)) == 1  # judged now, it joins the first volume on record
    assert len(judged) == 4  # the second volume ahead, the first, the second again (twice here)
    assert recorded.outcome is Outcome.PENDING


def test_a_changed_roster_makes_the_judgement_made_ahead_not_hold(engine: Engine, tmp_path: Path) -> None:
    recorder = recorder_for(engine, tmp_path)
    _, ahead = ahead_of(recorder, valid_submission())

    with Session(engine) as session:
        import_roster(session, [*ENTRIES, RosterEntry("淄博鲁中陶瓷有限责任公司", "淄博")], DEFAULT_CALL)
        session.commit()

    assert not ahead.holds(recorder.context())


def test_a_judgement_that_ran_out_of_time_is_made_again_in_its_turn(
    engine: Engine, tmp_path: Path, judged: list[str]
) -> None:
    recorder = recorder_for(engine, tmp_path, replace(RULES, judging_seconds=0))
    sha256, ahead = ahead_of(recorder, valid_submission())
    assert ahead.judgement is not None and Code.JUDGING_TIMEOUT in ahead.judgement.verdict.codes
    assert not ahead.holds(recorder.context())

    recorder.record_stored(sha256, "1.eml", RECEIVED, ahead=ahead)

    assert judged == [ENTERPRISE, ENTERPRISE]


def test_judging_ahead_that_raises_leaves_the_message_to_be_judged_in_its_turn(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = recorder_for(engine, tmp_path)
    calls: list[str] = []

    def failing_once(source: Path, **kwargs: Any) -> Any:
        calls.append("judge")
        if len(calls) == 1:
            raise RuntimeError("a reader's bug")
        return judge(source, **kwargs)

    monkeypatch.setattr(recording, "judge", failing_once)
    sha256, ahead = ahead_of(recorder, valid_submission())
    assert ahead.judgement is None and not ahead.holds(recorder.context())

    recorded = recorder.record_stored(sha256, "1.eml", RECEIVED, ahead=ahead)

    assert recorded.outcome is Outcome.ACCEPTED and calls == ["judge", "judge"]
    assert work_left(recorder) == []


def joined_with(foresight: Foresight) -> tuple[str, ...]:
    """The earlier volumes on record that the judgement joins to the message's own."""
    assert foresight.judgement is not None
    return foresight.judgement.joined


def work_left(recorder: Recorder) -> list[Path]:
    """What judging left in the scratch folder beside the blob store: nothing, once a message is judged."""
    return list((recorder.blobs.root / ".work").iterdir())


def replace_message_id(raw: bytes) -> bytes:
    """Another email (another Message-ID, so another raw message) with the same content."""
    return raw.replace(b"<test@minghu-soft.cn>", b"<test-2@minghu-soft.cn>")
