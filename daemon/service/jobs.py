"""The staff-side jobs: plain functions the scheduler runs at their time and the CLI can call at any time.

Each is idempotent for its day (the database records what was queued), so the daemon also runs them once
at start: a digest or reminder missed while it was down is caught up once, never replayed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from ..domain import Outcome
from ..explain import SHANGHAI
from ..staff import digest, reminders
from ..storage.models import MessageRecord, PackageRecord
from .runtime import Runtime

log = logging.getLogger(__name__)


def digest_if_due(runtime: Runtime, moment: datetime) -> bool:
    """Queue today's digest when its time has come and it was not queued yet."""
    settings = runtime.settings
    if not settings.digest.recipients or moment.astimezone(SHANGHAI).time() < settings.digest.time:
        return False
    runtime.refresh_rosters()
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, settings.campaign.name, moment)
        queued = digest.queue(session, runtime.renderer(), settings.digest.recipients, built, moment)
        session.commit()
    if queued:
        log.info("digest for %s queued to %s", built.day, ", ".join(settings.digest.recipients))
    return queued


def reminders_if_due(runtime: Runtime, moment: datetime) -> int:
    """Queue today's deadline reminders, if today is a reminder day and its time has come."""
    settings = runtime.settings
    runtime.refresh_rosters()
    with Session(runtime.engine) as session:
        due = reminders.candidates(session, runtime.rules, settings.reminders, moment)
        queued = reminders.queue(session, runtime.renderer(), runtime.rules, runtime.mailbox(), due, moment)
        session.commit()
    if queued:
        log.info("%d deadline reminders queued", queued)
    return queued


def expire_volumes(runtime: Runtime, moment: datetime) -> int:
    """Sets of volumes whose window closed without the rest arriving: judged again as of now, so the sender
    gets one rejection naming the volumes that never came."""
    window = runtime.rules.volume_window
    with Session(runtime.engine) as session:
        waiting = session.exec(
            select(MessageRecord.id, MessageRecord.received_at)
            .join(PackageRecord, col(PackageRecord.message_id) == MessageRecord.id)
            .where(PackageRecord.outcome == Outcome.PENDING, col(PackageRecord.joined_into).is_(None))
            .order_by(col(MessageRecord.received_at))
        ).all()
    recorder = runtime.recorder()
    planner = runtime.planner()

    def answer(session: Session, row: MessageRecord, _judgement: object) -> None:
        planner.queue(session, row, moment)

    expired = 0
    for record_id, received in waiting:
        if received + window <= moment and record_id is not None:
            revision = recorder.revise(record_id, "volume window closed", on_record=answer, clock=moment)
            expired += revision.changed
    if expired:
        log.info("%d sets of volumes rejected: their window closed", expired)
    return expired
