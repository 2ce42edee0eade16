"""Named points in the order of work where tests cut the power.

`SHENBAO_CRASH_AT=<name>` makes the process kill itself with SIGKILL when it reaches that point, so the
tests can show, deterministically, that every message still ends with exactly one verdict and at most one
reply after a restart. Unset (always, outside tests), it costs one dictionary lookup.
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
