"""Exit codes and the errors that choose them: what `daemon.cli` needs before any command's code is loaded,
so that `shenbao --help` and `--version` answer at once."""

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with the message."""


class EnvironmentProblem(Exception):
    """Something outside shenbao is missing (the RAR tool, the database): exit 3 with the message."""
