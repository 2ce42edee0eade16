"""Login attempts, limited: after `allowed` wrong passwords within a minute for one account or from one
address, further attempts are refused without looking at the password, until the minute has passed.

Kept in memory: the console is one process (waitress serves it with threads), and a restart of the server
is not something a guesser can cause.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

ALLOWED = 5
WINDOW_SECONDS = 60.0
_PRUNE_AT = 10_000


class LoginLimiter:
    def __init__(
        self, allowed: int = ALLOWED, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.allowed = allowed
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def refused(self, name: str, address: str) -> bool:
        """Whether an attempt now is refused: too many recent failures for the account or the address."""
        with self._lock:
            moment = self.clock()
            return any(len(self._recent(key, moment)) >= self.allowed for key in _keys(name, address))

    def failed(self, name: str, address: str) -> None:
        """A wrong password (or an unknown account) was tried."""
        with self._lock:
            moment = self.clock()
            if len(self._failures) > _PRUNE_AT:
                for key in list(self._failures):
                    self._recent(key, moment)
            for key in _keys(name, address):
                self._failures.setdefault(key, deque()).append(moment)

    def _recent(self, key: tuple[str, str], moment: float) -> deque[float]:
        found = self._failures.get(key, deque())
        while found and found[0] <= moment - self.window:
            found.popleft()
        if not found:
            self._failures.pop(key, None)
        return found


def _keys(name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("account", name.casefold()), ("address", address)
