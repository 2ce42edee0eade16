"""Test hooks: named points in the order of work where tests cut the power, and a message that fails.

`SHENBAO_CRASH_AT=<name>` makes the process kill itself with SIGKILL when it reaches that point, so the
tests can show, deterministically, that every message still ends with exactly one verdict and at most one
reply after a restart. `SHENBAO_FAIL_ON_SUBJECT=<text>` makes the handling of a message whose subject holds
that text raise, so they can show that one bad message cannot stop the others. Unset (always, outside
tests), each costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "downloaded",  # raw message stored and fsync'ed, no MailboxItem yet
    "item_saved",  # MailboxItem committed, not judged yet
    "recorded",  # verdict and queued reply committed, message not moved yet
    "moved",  # moved on the server, state not yet `done`
    "sending",  # reply marked `sending`, SMTP not started
    "smtp_accepted",  # the SMTP server accepted the reply, not yet marked `sent`
    "sent",  # marked sent, no copy in the Sent folder yet
)


def reached(point: str) -> None:
    if os.environ.get("SHENBAO_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


class InjectedFailure(Exception):
    """Raised on purpose by `fail_on_subject`."""


def fail_on_subject(subject: str) -> None:
    text = os.environ.get("SHENBAO_FAIL_ON_SUBJECT")
    if text and text in subject:
        raise InjectedFailure(f"SHENBAO_FAIL_ON_SUBJECT={text}")
