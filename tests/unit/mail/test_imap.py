"""The subject of a message as the server lists it (`HEADER.FIELDS (SUBJECT)`), decoded the way Chinese mail
needs: GBK-family encoded words, folded lines, raw 8-bit bytes."""

from __future__ import annotations

import base64

import pytest

from daemon.mail.imap import decode_subject

NAME = "济南明湖软件科技有限公司"


def gbk_word(text: str) -> bytes:
    return b"=?GBK?B?" + base64.b64encode(text.encode("gbk")) + b"?="


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Subject: " + gbk_word(NAME) + b"\r\n\r\n", NAME),
        (b"Subject: " + gbk_word("济南明湖") + b"\r\n " + gbk_word("软件科技有限公司") + b"\r\n\r\n", NAME),
        (b"SUBJECT: " + NAME.encode("gb18030") + b"\r\n\r\n", NAME),  # unlabelled 8-bit bytes
        (b"Subject: =?utf-8?b?" + base64.b64encode("回复：喆".encode()) + b"?=\r\n\r\n", "回复：喆"),
        (b"\r\n", ""),  # no Subject header at all
    ],
)
def test_subjects_are_decoded(header: bytes, expected: str) -> None:
    assert decode_subject(header) == expected


def test_a_long_subject_is_cut_to_200_characters() -> None:
    assert decode_subject(b"Subject: " + b"x" * 1000 + b"\r\n\r\n") == "x" * 200
