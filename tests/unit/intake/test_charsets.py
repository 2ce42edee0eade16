"""Decoding header text as Chinese mail really carries it (daemon/intake/charsets.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from daemon.intake.charsets import codecs_for, decode_bytes, decode_header_value, raw_bytes


def b_word(charset: str, data: bytes) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="


def q_word(charset: str, data: bytes) -> str:
    return f"=?{charset}?Q?{''.join(f'={byte:02X}' for byte in data)}?="


def wire(data: bytes) -> str:
    """Raw 8-bit header bytes as the email package's compat32 policy hands them over."""
    return data.decode("ascii", errors="surrogateescape")


# -- charset labels -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["gb2312", "GB2312", "gbk", "x-gbk", "cp936", "gb18030", "euc-cn", '"gbk"'])
def test_every_gb_family_label_is_decoded_as_gb18030(label: str) -> None:
    assert codecs_for(label) == ("gb18030",)


def test_rfc2231_language_suffix_does_not_hide_the_charset() -> None:
    assert codecs_for("gb2312*zh-cn") == ("gb18030",)


@pytest.mark.parametrize("label", ["x-no-such-charset", "", None, "us-ascii"])
def test_unknown_or_ascii_label_falls_back_to_utf8_then_gb18030(label: str | None) -> None:
    assert codecs_for(label) == ("utf-8", "gb18030")


def test_gb2312_labelled_bytes_holding_gbk_only_characters_decode() -> None:
    assert decode_bytes("王喆 朱镕基".encode("gbk"), "gb2312") == "王喆 朱镕基"


def test_ascii_labelled_8bit_utf8_bytes_decode_as_utf8() -> None:
    assert decode_bytes("济南明湖".encode(), "us-ascii") == "济南明湖"


def test_utf8_labelled_gbk_bytes_fall_back_to_gb18030() -> None:
    assert decode_bytes("济南明湖".encode("gbk"), "utf-8") == "济南明湖"


def test_unlabelled_gbk_bytes_decode_after_utf8_fails() -> None:
    assert decode_bytes("济南明湖软件".encode("gbk"), None) == "济南明湖软件"


def test_undecodable_bytes_never_raise() -> None:
    assert isinstance(decode_bytes(b"\xff\xfe\x80\x81\xfe", "utf-8"), str)


def test_raw_bytes_recovers_surrogate_escaped_wire_bytes() -> None:
    data = "申报".encode("gbk") + b" ok"
    assert raw_bytes(wire(data)) == data


# -- RFC 2047 encoded words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("utf-8", "utf-8"),
        ("gb2312", "gb2312"),
        ("gbk", "gbk"),
        ("x-gbk", "gbk"),
        ("cp936", "gbk"),
        ("gb18030", "gb18030"),
        ("big5", "big5"),
    ],
)
@pytest.mark.parametrize("encode", [b_word, q_word], ids=["B", "Q"])
def test_encoded_word_in_each_charset_decodes(charset: str, codec: str, encode: Callable[[str, bytes], str]) -> None:
    text = "济南明湖软件科技有限公司" if codec != "big5" else "濟南明湖軟件科技有限公司"
    assert decode_header_value(encode(charset, text.encode(codec))) == text


@pytest.mark.parametrize("charset", ["gb2312", "GB2312", "gbk", "x-gbk", "cp936"])
def test_gb_family_word_holding_gbk_only_characters_decodes(charset: str) -> None:
    assert decode_header_value(b_word(charset, "王喆与朱镕基".encode("gbk"))) == "王喆与朱镕基"


def test_gb18030_word_holding_four_byte_character_decodes() -> None:
    text = "𠀀申报"  # U+20000 is four bytes in GB18030
    assert decode_header_value(b_word("gb18030", text.encode("gb18030"))) == text


@pytest.mark.parametrize(("charset", "codec"), [("utf-8", "utf-8"), ("gbk", "gbk"), ("gb2312", "gbk")])
def test_adjacent_words_split_inside_a_character_are_joined_before_decoding(charset: str, codec: str) -> None:
    data = "王喆济南".encode(codec)
    cut = 3  # inside the second character in both UTF-8 (3 bytes each) and GBK (2 bytes each)
    value = b_word(charset, data[:cut]) + b_word(charset, data[cut:])
    assert decode_header_value(value) == "王喆济南"


def test_split_words_separated_by_folding_white_space_are_joined() -> None:
    data = "济南明湖软件科技有限公司".encode()
    value = b_word("utf-8", data[:7]) + "\r\n " + b_word("utf-8", data[7:20]) + "\r\n\t" + b_word("utf-8", data[20:])
    assert decode_header_value(value) == "济南明湖软件科技有限公司"


def test_white_space_between_encoded_words_is_dropped() -> None:
    value = b_word("utf-8", "济南".encode()) + "   " + b_word("gbk", "明湖".encode("gbk"))
    assert decode_header_value(value) == "济南明湖"


def test_words_of_different_charsets_are_decoded_each_with_its_own() -> None:
    value = b_word("gbk", "王喆".encode("gbk")) + " " + b_word("utf-8", "申报".encode())
    assert decode_header_value(value) == "王喆申报"


def test_plain_text_around_encoded_words_is_kept() -> None:
    value = "Re: " + b_word("gb2312", "济南".encode("gbk")) + " (2022)"
    assert decode_header_value(value) == "Re: 济南 (2022)"


def test_unknown_charset_label_holding_utf8_decodes_as_utf8() -> None:
    assert decode_header_value(b_word("x-made-up", "济南明湖".encode())) == "济南明湖"


def test_unknown_charset_label_holding_gbk_decodes_as_gb18030() -> None:
    assert decode_header_value(b_word("x-made-up", "济南明湖".encode("gbk"))) == "济南明湖"


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?B?5rWO5Y2X!!!?=",
        "=?utf-8?B?5?=",
        "=?utf-8?B?5rW=O5Y2X?=",
        "=?gbk?B?====?=",
        "=?utf-8?Q?=E6=B5=?=",
        "=?utf-8?B?",
        "=??B?5rWO?=",
    ],
)
def test_damaged_encoded_word_never_raises(value: str) -> None:
    assert isinstance(decode_header_value(value), str)


def test_base64_missing_its_padding_still_decodes() -> None:
    encoded = base64.b64encode("济南".encode()).decode().rstrip("=")
    assert decode_header_value(f"=?utf-8?B?{encoded}?=") == "济南"


@pytest.mark.parametrize("codec", ["utf-8", "gbk"])
def test_raw_8bit_header_bytes_decode_without_a_label(codec: str) -> None:
    assert decode_header_value(wire("济南明湖软件科技有限公司".encode(codec))) == "济南明湖软件科技有限公司"


def test_folded_plain_header_is_unfolded() -> None:
    assert decode_header_value("济南明湖\r\n 软件") == "济南明湖 软件"
