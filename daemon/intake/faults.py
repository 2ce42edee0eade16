"""Our trouble, as opposed to the sender's: a fault of the machine is never answered as a fault of the input.

A full disk, a missing tool or a killed process says nothing about the message being judged. Telling the
sender 「压缩包已损坏」 because our disk was full would be false, so such faults raise `EnvironmentFault`, which
the pipeline lets through: the caller leaves the message unhandled and it is judged again once things work.
"""

from __future__ import annotations

import errno

ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,  # disk full
        errno.EDQUOT,  # quota exhausted
        errno.EIO,  # the disk failed
        errno.EMFILE,  # too many open files in this process
        errno.ENFILE,  # too many open files on the machine
        errno.EROFS,  # our folder became read-only
        errno.EACCES,  # our folder's permissions changed
        errno.EPERM,
        errno.ENOMEM,  # the kernel could not give memory (fork, mmap): not the input's doing
        errno.EAGAIN,  # fork refused: the process limit
    }
)
"""Error numbers that speak of the machine, never of what is being read."""


class EnvironmentFault(Exception):
    """Something on our side failed, so no verdict can be given now; the message says what, in English, for logs.

    Callers must not record a verdict: leave the message unhandled (it is judged again later) and log this.
    """


def is_environmental(error: BaseException) -> bool:
    """Whether an OS error is the machine's (disk full, descriptors exhausted, I/O error), not the input's."""
    return isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRNOS


def fault(doing: str, error: BaseException) -> EnvironmentFault:
    """An EnvironmentFault saying what we were doing when `error` happened."""
    return EnvironmentFault(f"{doing}: {type(error).__name__}: {error}")
