"""Addresses we write into headers (daemon/addresses.py) and the roster's contact cells they come from."""

from __future__ import annotations

import pytest

from daemon.addresses import BadRecipient, mailboxes, single_address
from daemon.app.queries import contact_addresses


@pytest.mark.parametrize(
    ("text", "address"),
    [("ops@minghu-soft.cn", "ops@minghu-soft.cn"), ("张工 <ops@minghu-soft.cn>", "ops@minghu-soft.cn")],
)
def test_one_mailbox_gives_its_address(text: str, address: str) -> None:
    assert single_address(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "a@minghu-soft.cn, b@minghu-soft.cn",
        "ops@minghu-soft.cn\r\nBcc: x@evil.example",
        "(" * 992 + "ops@minghu-soft.cn",
    ],
)
def test_anything_but_one_plain_mailbox_is_refused(text: str) -> None:
    with pytest.raises(BadRecipient):
        single_address(text)


def test_comments_nested_past_the_parsers_recursion_hold_no_mailbox() -> None:
    assert mailboxes(["(" * 992 + " <ops@minghu-soft.cn>"]) == []
    assert mailboxes(["张工 <ops@minghu-soft.cn>"]) == [("张工", "ops@minghu-soft.cn")]


def test_a_roster_cell_keeps_its_good_addresses_and_drops_the_rest() -> None:
    cell = "OPS@minghu-soft.cn；" + "(" * 992 + "x@y.cn， boss@minghu-soft.cn"
    assert contact_addresses(cell) == ["ops@minghu-soft.cn", "boss@minghu-soft.cn"]
