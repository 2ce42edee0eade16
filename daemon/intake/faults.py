"""Failures of our own environment, told apart from facts about a message."""


class EnvironmentFault(Exception):
    """Our environment failed (disk full, I/O error, out of file descriptors, a tool missing): not a fact about the input; the message must be judged again later."""  # noqa: E501
