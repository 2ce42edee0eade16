"""The staff-side jobs: plain functions the scheduler runs at their time and the CLI can call at any time.

Each is idempotent for its day (the database records what was queued), so the daemon also runs them once
at start: a digest or reminder missed while it was down is caught up once, never replayed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from ..explain import SHANGHAI
from ..service.runtime import Runtime
from . import digest, reminders

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
