"""How the database has fared across the daemon's cycles, and when to stop trusting it.

A failing database is tried again with backoff, at most a minute apart. When errors fill every cycle for
`give_up_seconds` (and at least `_MIN_FAILURES` cycles), the daemon stops with a non-zero status so systemd
starts it afresh: new connections, the file opened anew. Once the database works again after failing, the
outage is returned so it can be written down as an alert, where the digest shows it to staff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from ..explain import shanghai_time
from ..storage.models import now

BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
_MIN_FAILURES = 3


class DatabaseFailing(Exception):
    """Database errors persisted past the patience allowed: stop, and let systemd start afresh."""


def summary(error: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's statement and link."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


@dataclass(frozen=True)
class Outage:
    started: datetime
    ended: datetime
    failures: int
    last_error: str

    def alert_text(self) -> str:
        """For staff, in the digest."""
        return (
            f"数据库自 {shanghai_time(self.started)} 起无法使用，{shanghai_time(self.ended)} 恢复"
            f"（出错 {self.failures} 次，最后一次：{self.last_error}）"
        )


@dataclass
class DatabaseHealth:
    give_up_seconds: float
    clock: Callable[[], float] = time.monotonic
    _since: float | None = field(default=None, init=False)
    _started: datetime | None = field(default=None, init=False)
    _failures: int = field(default=0, init=False)
    _last_error: str = field(default="", init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)

    def failed(self, error: BaseException) -> DatabaseFailing | None:
        """Note an error; once errors have lasted `give_up_seconds` and `_MIN_FAILURES` cycles, the reason
        to give up."""
        with self._guard:
            if self._since is None:
                self._since, self._started = self.clock(), now()
            self._failures += 1
            self._last_error = summary(error)
            lasted = self.clock() - self._since
            if lasted < self.give_up_seconds or self._failures < _MIN_FAILURES:
                return None
            return DatabaseFailing(
                f"database errors in every cycle for {lasted:.0f} s ({self._failures} times); "
                f"the last: {self._last_error}"
            )

    def backoff(self) -> float:
        """Seconds to wait before the next try: doubling from one second, at most a minute."""
        with self._guard:
            return min(BACKOFF_START * 2.0 ** min(max(self._failures - 1, 0), 16), BACKOFF_CAP)

    def succeeded(self) -> Outage | None:
        """The outage this success ends, if the database was failing."""
        with self._guard:
            if self._started is None:
                return None
            outage = Outage(self._started, now(), self._failures, self._last_error)
            self._since, self._started, self._failures, self._last_error = None, None, 0, ""
            return outage
