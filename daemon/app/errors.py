"""What staff asked for cannot be done: the errors the application layer raises, for every face to show."""


class ActionError(Exception):
    """The action cannot be done; the message says why, in Chinese, for the person who asked."""


class NotFound(ActionError):
    """Nothing on record answers to what staff gave (a 登记编号, a name)."""
