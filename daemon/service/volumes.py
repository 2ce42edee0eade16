"""Sets of volumes (分卷) whose window closed before the rest arrived."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from ..domain import Outcome
from ..storage.models import MessageRecord, PackageRecord
from .runtime import Runtime

log = logging.getLogger(__name__)


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
