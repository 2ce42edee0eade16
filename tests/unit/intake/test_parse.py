"""From the raw bytes of an email to a ParsedMessage (daemon/intake/parse.py)."""

from __future__ import annotations

import base64
import errno
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import ENTERPRISE, RECEIVED, rar, submission, valid_submission

from daemon.domain import ParsedMessage
from daemon.intake.faults import EnvironmentFault
from daemon.intake.parse import Unreadable, parse_message

SHANGHAI = timezone(timedelta(hours=8))
RAR5 = b"Rar!\x1a\x07\x01\x00" + b"\x00" * 24


def b64(text: str, codec: str = "utf-8") -> bytes:
    return base64.b64encode(text.encode(codec))


def email(*headers: bytes, body: bytes = b"\xe6\x82\xa8\xe5\xa5\xbd\r\n") -> bytes:
    """A single-part message with the given header lines (bytes, without line ends) after From/To/Date."""
    head = [
        b"From: ops@minghu-soft.cn",
        b"To: kejichu2019@shandong.cn",
        b"Date: Tue, 28 Jun 2022 09:30:00 +0800",
        b"Message-ID: <raw@minghu-soft.cn>",
        *headers,
        b"MIME-Version: 1.0",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def with_part(part_headers: bytes, payload: bytes = RAR5) -> bytes:
    """A multipart/mixed message whose second part has the given raw headers and base64 payload."""
    return (
        b"From: ops@minghu-soft.cn\r\n"
        b"To: kejichu2019@shandong.cn\r\n"
        b"Subject: test\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BOUNDARY"\r\n'
        b"\r\n"
        b"--BOUNDARY\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"see attachment\r\n"
        b"--BOUNDARY\r\n" + part_headers + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.encodebytes(payload) + b"--BOUNDARY--\r\n"
    )


def parse(raw: bytes, workdir: Path, **kwargs: object) -> ParsedMessage:
    parsed = parse_message(raw, workdir, **kwargs)  # type: ignore[arg-type]
    assert isinstance(parsed, ParsedMessage), parsed
    return parsed


def filenames(parsed: ParsedMessage) -> list[str]:
    return [a.filename for a in parsed.attachments]


# -- subjects -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "codec", "text"),
    [
        (b"utf-8", "utf-8", ENTERPRISE),
        (b"UTF-8", "utf-8", ENTERPRISE),
        (b"gb2312", "gb2312", ENTERPRISE),
        (b"gbk", "gbk", ENTERPRISE),
        (b"x-gbk", "gbk", ENTERPRISE),
        (b"cp936", "gbk", ENTERPRISE),
        (b"gb18030", "gb18030", ENTERPRISE),
        (b"big5", "big5", "濟南明湖軟件科技有限公司"),
    ],
)
def test_base64_encoded_subject_decodes_in_each_chinese_charset(
    charset: bytes, codec: str, text: str, workdir: Path
) -> None:
    raw = email(b"Subject: =?" + charset + b"?B?" + b64(text, codec) + b"?=")
    assert parse(raw, workdir).subject == text


@pytest.mark.parametrize(("charset", "codec"), [(b"big5", "big5"), (b"gbk", "gbk"), (b"utf-8", "utf-8")])
def test_quoted_printable_encoded_subject_decodes(charset: bytes, codec: str, workdir: Path) -> None:
    text = "濟南明湖軟件" if codec == "big5" else "济南明湖软件"
    q = "".join(f"={byte:02X}" for byte in text.encode(codec)).encode()
    raw = email(b"Subject: =?" + charset + b"?Q?" + q + b"?=")
    assert parse(raw, workdir).subject == text


@pytest.mark.parametrize("charset", [b"gb2312", b"GB2312", b"gbk", b"x-gbk", b"cp936"])
def test_gb2312_word_holding_gbk_only_character_decodes(charset: bytes, workdir: Path) -> None:
    raw = email(b"Subject: =?" + charset + b"?B?" + b64("王喆 朱镕基", "gbk") + b"?=")
    assert parse(raw, workdir).subject == "王喆 朱镕基"


@pytest.mark.parametrize(("charset", "codec"), [(b"utf-8", "utf-8"), (b"gbk", "gbk")])
def test_adjacent_words_split_inside_a_multibyte_character_join(charset: bytes, codec: str, workdir: Path) -> None:
    data = ENTERPRISE.encode(codec)
    first, second = data[:5], data[5:]  # 5 bytes cut a character in both UTF-8 and GBK
    raw = email(
        b"Subject: =?" + charset + b"?B?" + base64.b64encode(first) + b"?="
        b"=?" + charset + b"?B?" + base64.b64encode(second) + b"?="
    )
    assert parse(raw, workdir).subject == ENTERPRISE


def test_encoded_words_separated_by_folding_white_space_join(workdir: Path) -> None:
    data = ENTERPRISE.encode("gbk")
    raw = email(
        b"Subject: =?gbk?B?" + base64.b64encode(data[:7]) + b"?=\r\n"
        b" =?gbk?B?" + base64.b64encode(data[7:15]) + b"?=\r\n"
        b"\t=?gbk?B?" + base64.b64encode(data[15:]) + b"?="
    )
    assert parse(raw, workdir).subject == ENTERPRISE


@pytest.mark.parametrize("codec", ["gbk", "utf-8"])
def test_raw_8bit_subject_bytes_decode(codec: str, workdir: Path) -> None:
    raw = email(b"Subject: " + ENTERPRISE.encode(codec))
    assert parse(raw, workdir).subject == ENTERPRISE


def test_raw_gbk_subject_holding_gbk_only_character_decodes(workdir: Path) -> None:
    raw = email(b"Subject: " + "王喆的申报".encode("gbk"))
    assert parse(raw, workdir).subject == "王喆的申报"


def test_subject_with_unknown_charset_label_still_decodes(workdir: Path) -> None:
    raw = email(b"Subject: =?x-unheard-of?B?" + b64(ENTERPRISE) + b"?=")
    assert parse(raw, workdir).subject == ENTERPRISE


@pytest.mark.parametrize(
    "subject",
    [
        b"=?utf-8?B?5rWO5Y2X!!!?=",
        b"=?utf-8?B?5?=",
        b"=?gbk?B?====?=",
        b"=?utf-8?B?5rWO5Y2X",
        b"=?utf-8?Q?=E6=B5=?=",
    ],
)
def test_damaged_base64_subject_never_raises(subject: bytes, workdir: Path) -> None:
    parsed = parse_message(email(b"Subject: " + subject), workdir)
    assert isinstance(parsed, ParsedMessage)
    assert isinstance(parsed.subject, str)


def test_subject_with_reply_prefix_and_encoded_word_keeps_both(workdir: Path) -> None:
    raw = email(b"Subject: Re: =?gb2312?B?" + b64("济南", "gbk") + b"?=")
    assert parse(raw, workdir).subject == "Re: 济南"


# -- what cannot be parsed, and what can be repaired --------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02\xff\xfe binary junk without any header \x80\x81",
        b"just a line of text\r\nand another one\r\n",
    ],
    ids=["empty", "binary", "text"],
)
def test_input_without_headers_is_unreadable(raw: bytes, workdir: Path) -> None:
    assert isinstance(parse_message(raw, workdir), Unreadable)


def test_utf8_byte_order_mark_before_headers_still_parses(workdir: Path) -> None:
    parsed = parse(b"\xef\xbb\xbf" + submission(), workdir)
    assert parsed.subject == ENTERPRISE
    assert parsed.sender == "ops@minghu-soft.cn"


def test_white_space_before_the_colon_of_a_header_still_parses(workdir: Path) -> None:
    raw = email(b"Subject : =?utf-8?B?" + b64(ENTERPRISE) + b"?=")
    assert parse(raw, workdir).subject == ENTERPRISE


def test_message_can_be_read_from_a_file(workdir: Path, tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(submission())
    parsed = parse_message(path, workdir)
    assert isinstance(parsed, ParsedMessage)
    assert parsed.subject == ENTERPRISE


# -- sender ------------------------------------------------------------------------------------------------


def test_single_sender_address_is_lower_cased(workdir: Path) -> None:
    raw = email(b"Subject: x").replace(b"From: ops@minghu-soft.cn", b"From: Zhang Gong <OPS@Minghu-Soft.CN>")
    parsed = parse(raw, workdir)
    assert parsed.sender == "ops@minghu-soft.cn"
    assert parsed.sender_name == "Zhang Gong"


def test_encoded_display_name_of_sender_is_decoded(workdir: Path) -> None:
    raw = email(b"Subject: x").replace(
        b"From: ops@minghu-soft.cn", b"From: =?gb2312?B?" + b64("王喆", "gbk") + b"?= <ops@minghu-soft.cn>"
    )
    parsed = parse(raw, workdir)
    assert parsed.sender == "ops@minghu-soft.cn"
    assert parsed.sender_name == "王喆"


def test_display_name_with_a_comma_in_quotes_gives_one_sender(workdir: Path) -> None:
    raw = email(b"Subject: x").replace(b"From: ops@minghu-soft.cn", b'From: "Zhang, Gong" <ops@minghu-soft.cn>')
    assert parse(raw, workdir).sender == "ops@minghu-soft.cn"


def test_encoded_display_name_that_looks_like_an_address_still_gives_one_sender(workdir: Path) -> None:
    """Clients often use the address itself as display name, and some encode every display name."""
    raw = email(b"Subject: x").replace(
        b"From: ops@minghu-soft.cn", b"From: =?utf-8?B?" + b64("ops@minghu-soft.cn") + b"?= <ops@minghu-soft.cn>"
    )
    assert parse(raw, workdir).sender == "ops@minghu-soft.cn"


def test_two_addresses_in_from_give_no_sender(workdir: Path) -> None:
    raw = email(b"Subject: x").replace(b"From: ops@minghu-soft.cn", b"From: ops@minghu-soft.cn, boss@minghu-soft.cn")
    assert parse(raw, workdir).sender is None


def test_comments_nested_past_the_parsers_recursion_give_no_sender_but_a_readable_message(workdir: Path) -> None:
    """A display name of a thousand `(` made the email package's address parser recurse until Python stopped
    it: the message was judged unreadable."""
    raw = email(b"Subject: x").replace(b"From: ops@minghu-soft.cn", b"From: " + b"(" * 992 + b" <ops@minghu-soft.cn>")
    parsed = parse(raw, workdir)
    assert parsed.sender is None
    assert parsed.subject == "x"


# -- received time -----------------------------------------------------------------------------------------


def test_topmost_received_date_wins_over_lower_ones_and_date(workdir: Path) -> None:
    raw = email(
        b"Received: from relay.shandong.cn by mail.shandong.cn; Wed, 06 Jul 2022 00:10:00 +0800",
        b"Received: from smtp.minghu-soft.cn by relay.shandong.cn; Tue, 05 Jul 2022 23:58:00 +0800",
    )
    assert parse(raw, workdir).received_at == datetime(2022, 7, 6, 0, 10, tzinfo=SHANGHAI)


def test_received_date_wins_even_when_date_header_is_later(workdir: Path) -> None:
    raw = email(b"Received: from mx by mail.shandong.cn; Mon, 27 Jun 2022 08:00:00 +0800").replace(
        b"Date: Tue, 28 Jun 2022 09:30:00 +0800", b"Date: Fri, 01 Jul 2022 12:00:00 +0800"
    )
    assert parse(raw, workdir).received_at == datetime(2022, 6, 27, 8, 0, tzinfo=SHANGHAI)


def test_received_date_folded_over_lines_is_read(workdir: Path) -> None:
    raw = email(
        b"Received: from mx.example.net (mx.example.net [192.0.2.1])\r\n"
        b"\tby mail.shandong.cn;\r\n"
        b"\tWed, 06 Jul 2022 00:10:00 +0800"
    )
    assert parse(raw, workdir).received_at == datetime(2022, 7, 6, 0, 10, tzinfo=SHANGHAI)


def test_coremail_received_date_with_zone_comment_is_read(workdir: Path) -> None:
    raw = email(
        b"Received: from mail (unknown [192.0.2.1]) by newmx (Coremail) with SMTP id AQAAfwA;"
        b" Tue, 05 Jul 2022 23:58:00 +0800 (CST)"
    )
    assert parse(raw, workdir).received_at == datetime(2022, 7, 5, 23, 58, tzinfo=SHANGHAI)


def test_topmost_received_without_a_date_defers_to_the_next_received(workdir: Path) -> None:
    raw = email(
        b"Received: from localhost by mail.shandong.cn with LMTP id 4711",
        b"Received: from mx by mail.shandong.cn; Wed, 06 Jul 2022 00:10:00 +0800",
    )
    assert parse(raw, workdir).received_at == datetime(2022, 7, 6, 0, 10, tzinfo=SHANGHAI)


def test_falls_back_to_date_when_no_received_header_has_a_date(workdir: Path) -> None:
    raw = email(b"Received: from mx.example.net by mail.shandong.cn with ESMTP id 12345")
    assert parse(raw, workdir).received_at == datetime(2022, 6, 28, 9, 30, tzinfo=SHANGHAI)


def test_falls_back_to_date_when_there_is_no_received_header(workdir: Path) -> None:
    parsed = parse(submission(received=None), workdir)
    assert parsed.received_at == RECEIVED


def test_explicit_internaldate_wins_over_received_and_date(workdir: Path) -> None:
    internaldate = datetime(2022, 7, 1, 12, 0, tzinfo=UTC)
    raw = email(b"Received: from mx by mail.shandong.cn; Mon, 27 Jun 2022 08:00:00 +0800")
    assert parse(raw, workdir, internaldate=internaldate).received_at == internaldate


def test_received_time_is_timezone_aware(workdir: Path) -> None:
    raw = email(b"Received: from mx by mail.shandong.cn; Mon, 27 Jun 2022 08:00:00 -0000")
    received = parse(raw, workdir).received_at
    assert received is not None
    assert received.tzinfo is not None


DATE_LINE = b"Date: Tue, 28 Jun 2022 09:30:00 +0800"
DATE = datetime(2022, 6, 28, 9, 30, tzinfo=SHANGHAI)
GOOD_RECEIVED = b"Received: from mx by mail.shandong.cn; Mon, 27 Jun 2022 08:00:00 +0800"
HOSTILE_DATES = {
    "20-digit year": "Tue, 28 Jun 99999999999999999999 09:30:00 +0800",
    "20-digit day": "Tue, 99999999999999999999 Jun 2022 09:30:00 +0800",
    "20-digit hour": "Tue, 28 Jun 2022 99999999999999999999:30:00 +0800",
    "20-digit offset": "Tue, 28 Jun 2022 09:30:00 +99999999999999999999",
    "offset of days": "Tue, 28 Jun 2022 09:30:00 -9999",
    "negative year": "Tue, 28 Jun -2022 09:30:00 +0800",
    "year 1000": "Wed, 1 Jan 1000 00:00:00 +0000",
    "year 1899": "Sun, 31 Dec 1899 23:59:59 +0000",
    "last moment of year 9999 west of UTC": "Fri, 31 Dec 9999 23:59:59 -2359",
    "10,000 digits": "1" * 10_000,
    "10,000 characters of a date": "Tue, 28 Jun 2022 09:30:00 +0800 " * 300,
}


@pytest.mark.parametrize("date", HOSTILE_DATES.values(), ids=HOSTILE_DATES.keys())
def test_a_hostile_topmost_received_date_defers_to_the_next_received(date: str, workdir: Path) -> None:
    raw = email(b"Received: from mx by mail.shandong.cn; " + date.encode(), GOOD_RECEIVED)
    assert parse(raw, workdir).received_at == datetime(2022, 6, 27, 8, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("date", HOSTILE_DATES.values(), ids=HOSTILE_DATES.keys())
def test_a_hostile_received_date_alone_defers_to_date(date: str, workdir: Path) -> None:
    raw = email(b"Received: from mx by mail.shandong.cn; " + date.encode())
    assert parse(raw, workdir).received_at == DATE


@pytest.mark.parametrize("date", HOSTILE_DATES.values(), ids=HOSTILE_DATES.keys())
def test_a_hostile_date_without_received_is_no_received_time_and_no_unreadable_message(
    date: str, workdir: Path
) -> None:
    raw = email().replace(DATE_LINE, b"Date: " + date.encode())
    assert parse(raw, workdir).received_at is None


def test_a_year_under_100_is_read_as_rfc_5322_says(workdir: Path) -> None:
    raw = email(b"Received: from mx by mail.shandong.cn; Tue, 28 Jun 0 09:30:00 +0800")
    assert parse(raw, workdir).received_at == datetime(2000, 6, 28, 9, 30, tzinfo=SHANGHAI)


def test_the_first_and_last_years_in_range_are_dates(workdir: Path) -> None:
    first = email(b"Received: from mx by mail.shandong.cn; Mon, 1 Jan 1900 00:00:00 +0000")
    last = email(b"Received: from mx by mail.shandong.cn; Fri, 31 Dec 9998 23:59:59 +0000")
    assert parse(first, workdir).received_at == datetime(1900, 1, 1, tzinfo=UTC)
    assert parse(last, workdir).received_at == datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC)


# -- our environment failing is not the sender's doing (issue 8, finding 1) ---------------------------------


@pytest.fixture
def small_folder(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of 1 MiB mounted on a temporary folder (read-only when the test is parametrized with "ro")."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    options = "size=1m" + (",ro" if getattr(request, "param", "") == "ro" else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_an_attachment_that_does_not_fit_on_the_disk_is_an_environment_fault(small_folder: Path) -> None:
    raw = submission(attachments=[(f"{ENTERPRISE}.rar", os.urandom(2 << 20))])

    with pytest.raises(EnvironmentFault) as raised:
        parse_message(raw, small_folder)

    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.ENOSPC


def test_the_same_disk_takes_an_attachment_that_fits(small_folder: Path) -> None:
    parsed = parse(submission(attachments=[(f"{ENTERPRISE}.rar", os.urandom(64 << 10))]), small_folder)
    assert [a.size for a in parsed.attachments] == [64 << 10]


@pytest.mark.parametrize("small_folder", ["ro"], indirect=True)
def test_a_read_only_work_folder_is_an_environment_fault(small_folder: Path) -> None:
    with pytest.raises(EnvironmentFault) as raised:
        parse_message(valid_submission(), small_folder)

    assert isinstance(raised.value.__cause__, OSError)
    assert raised.value.__cause__.errno == errno.EROFS


def test_running_out_of_memory_is_an_environment_fault(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_args: object) -> None:
        raise MemoryError

    monkeypatch.setattr("daemon.intake.parse.walk", exhausted)

    with pytest.raises(EnvironmentFault) as raised:
        parse_message(valid_submission(), workdir)

    assert isinstance(raised.value.__cause__, MemoryError)


def test_a_message_file_that_is_gone_is_still_an_unreadable_message(tmp_path: Path, workdir: Path) -> None:
    """Only the errors listed as our environment's are raised; any other stays a verdict."""
    assert isinstance(parse_message(tmp_path / "no-such.eml", workdir), Unreadable)


# -- attachment names --------------------------------------------------------------------------------------


def test_plain_ascii_filename(workdir: Path) -> None:
    parsed = parse(submission(attachments=[("minghu.rar", rar("valid.rar"))]), workdir)
    assert filenames(parsed) == ["minghu.rar"]


def test_attachment_is_decoded_to_disk_with_its_size_hash_and_head(workdir: Path) -> None:
    data = rar("valid.rar")
    (attachment,) = parse(submission(attachments=[(f"{ENTERPRISE}.rar", data)]), workdir).attachments
    assert attachment.filename == f"{ENTERPRISE}.rar"
    assert attachment.path.read_bytes() == data
    assert attachment.path.parent == workdir
    assert attachment.size == len(data)
    assert attachment.head == data[: len(attachment.head)]
    assert attachment.head.startswith(b"Rar!")
    assert len(attachment.sha256) == 64


def test_rfc2231_utf8_filename_with_continuations(workdir: Path) -> None:
    encoded = quote(f"{ENTERPRISE}.rar".encode(), safe="")
    half = len(encoded) // 2
    while encoded[half - 1] == "%" or encoded[half - 2] == "%":  # do not cut a %XX escape
        half += 1
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment;\r\n"
        b" filename*0*=utf-8''" + encoded[:half].encode() + b";\r\n"
        b" filename*1*=" + encoded[half:].encode()
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_rfc2231_filename_without_continuations(workdir: Path) -> None:
    encoded = quote(f"{ENTERPRISE}.rar".encode(), safe="").encode()
    part = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''" + encoded
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_rfc2231_gb2312_filename_holding_gbk_only_characters(workdir: Path) -> None:
    encoded = quote("王喆朱镕基.rar".encode("gbk"), safe="").encode()
    part = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=gb2312''" + encoded
    assert filenames(parse(with_part(part), workdir)) == ["王喆朱镕基.rar"]


def test_rfc2047_word_inside_quoted_filename(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?gbk?B?' + b64("王喆科技有限公司.rar", "gbk") + b'?="'
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆科技有限公司.rar"]


def test_rfc2047_words_folded_inside_quoted_filename(workdir: Path) -> None:
    data = f"{ENTERPRISE}.rar".encode()
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?B?' + base64.b64encode(data[:10]) + b"?=\r\n"
        b" =?utf-8?B?" + base64.b64encode(data[10:]) + b'?="'
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_rfc2047_word_as_unquoted_filename(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename==?GBK?B?" + b64(f"{ENTERPRISE}.rar", "gbk") + b"?="
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_name_on_content_type_only(workdir: Path) -> None:
    part = b'Content-Type: application/octet-stream; name="=?utf-8?B?' + b64(f"{ENTERPRISE}.rar") + b'?="'
    parsed = parse(with_part(part), workdir)
    assert filenames(parsed) == [f"{ENTERPRISE}.rar"]


def test_raw_gbk_bytes_in_quoted_filename(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + "王喆科技有限公司.rar".encode("gbk") + b'"'
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆科技有限公司.rar"]


def test_raw_utf8_bytes_in_quoted_filename(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + f"{ENTERPRISE}.rar".encode() + b'"'
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_rfc2231_gb2312_filename_with_continuations(workdir: Path) -> None:
    first = quote("王喆".encode("gbk"), safe="").encode()
    second = quote("朱镕基.rar".encode("gbk"), safe="").encode()
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*0*=gb2312''" + first + b"; filename*1*=" + second
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆朱镕基.rar"]


def test_rfc2231_continuations_split_inside_a_utf8_character(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*0*=utf-8''%E6%B5; filename*1*=%8E.rar"
    )
    assert filenames(parse(with_part(part), workdir)) == ["济.rar"]


def test_rfc2231_filename_with_raw_utf8_instead_of_percent_escapes(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''" + f"{ENTERPRISE}.rar".encode()
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


def test_rfc2047_gbk_words_split_inside_a_character_in_filename(workdir: Path) -> None:
    data = "王喆.rar".encode("gbk")
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?gbk?B?' + base64.b64encode(data[:3]) + b"?= "
        b"=?gbk?B?" + base64.b64encode(data[3:]) + b'?="'
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆.rar"]


def test_name_on_content_type_when_disposition_has_no_filename(workdir: Path) -> None:
    part = (
        b'Content-Type: application/octet-stream; name="=?gb2312?B?' + b64("王喆.rar", "gbk") + b'?="\r\n'
        b"Content-Disposition: attachment"
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆.rar"]


def test_unquoted_rfc2047_name_on_content_type(workdir: Path) -> None:
    part = b"Content-Type: application/octet-stream; name==?gb2312?B?" + b64("王喆.rar", "gbk") + b"?="
    assert filenames(parse(with_part(part), workdir)) == ["王喆.rar"]


def test_raw_gbk_bytes_in_unquoted_filename(workdir: Path) -> None:
    part = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=" + "王喆.rar".encode(
        "gbk"
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆.rar"]


def test_big5_rfc2047_filename(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?big5?B?' + b64("濟南明湖.rar", "big5") + b'?="'
    )
    assert filenames(parse(with_part(part), workdir)) == ["濟南明湖.rar"]


def test_path_inside_an_encoded_filename_is_reduced_to_the_base_name(workdir: Path) -> None:
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?B?' + b64("C:\\fakepath\\王喆.rar") + b'?="'
    )
    assert filenames(parse(with_part(part), workdir)) == ["王喆.rar"]


@pytest.mark.parametrize(
    "wire_name",
    [b"C:\\fakepath\\x.rar", b"C:\\\\fakepath\\\\x.rar", b"/home/user/x.rar", b"..\\..\\x.rar"],
)
def test_path_in_filename_is_reduced_to_the_base_name(wire_name: bytes, workdir: Path) -> None:
    part = b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="' + wire_name + b'"'
    assert filenames(parse(with_part(part), workdir)) == ["x.rar"]


def test_disposition_filename_wins_over_content_type_name(workdir: Path) -> None:
    part = (
        b'Content-Type: application/octet-stream; name="other.rar"\r\n'
        b'Content-Disposition: attachment; filename="' + f"{ENTERPRISE}.rar".encode() + b'"'
    )
    assert filenames(parse(with_part(part), workdir)) == [f"{ENTERPRISE}.rar"]


# -- structure ---------------------------------------------------------------------------------------------


def test_forwarded_message_attachment_belongs_to_the_outer_message(workdir: Path) -> None:
    inner = submission(
        subject="原始主题",
        sender="someone@else.example",
        attachments=[(f"{ENTERPRISE}.rar", rar("valid.rar"))],
    )
    outer = (
        b"From: Forwarder <Boss@Minghu-Soft.cn>\r\n"
        b"To: kejichu2019@shandong.cn\r\n"
        b"Subject: =?utf-8?B?" + b64(f"转发：{ENTERPRISE}") + b"?=\r\n"
        b"Date: Tue, 28 Jun 2022 10:00:00 +0800\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="OUTER"\r\n'
        b"\r\n"
        b"--OUTER\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"forwarding\r\n"
        b"--OUTER\r\n"
        b"Content-Type: message/rfc822\r\n"
        b'Content-Disposition: attachment; filename="forward.eml"\r\n'
        b"\r\n" + inner + b"\r\n--OUTER--\r\n"
    )
    parsed = parse(outer, workdir)
    assert parsed.subject == f"转发：{ENTERPRISE}"
    assert parsed.sender == "boss@minghu-soft.cn"
    assert filenames(parsed) == [f"{ENTERPRISE}.rar"]
    assert parsed.attachments[0].path.read_bytes() == rar("valid.rar")


def test_inline_image_in_multipart_related_is_not_an_attachment(workdir: Path) -> None:
    raw = (
        b"From: ops@minghu-soft.cn\r\n"
        b"Subject: test\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="MIXED"\r\n'
        b"\r\n"
        b"--MIXED\r\n"
        b'Content-Type: multipart/related; boundary="RELATED"\r\n'
        b"\r\n"
        b"--RELATED\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"\r\n"
        b'<p>hello</p><img src="cid:logo@minghu">\r\n'
        b"--RELATED\r\n"
        b'Content-Type: image/png; name="logo.png"\r\n'
        b"Content-ID: <logo@minghu>\r\n"
        b'Content-Disposition: inline; filename="logo.png"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.encodebytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16) + b"--RELATED--\r\n"
        b"--MIXED\r\n"
        b'Content-Type: application/octet-stream; name="x.rar"\r\n'
        b'Content-Disposition: attachment; filename="x.rar"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.encodebytes(RAR5) + b"--MIXED--\r\n"
    )
    parsed = parse(raw, workdir)
    assert filenames(parsed) == ["x.rar"]
    assert "hello" in parsed.body_text


def test_plain_and_html_bodies_are_both_kept_as_text(workdir: Path) -> None:
    raw = (
        b"From: ops@minghu-soft.cn\r\n"
        b"Subject: test\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="ALT"\r\n'
        b"\r\n"
        b"--ALT\r\n"
        b"Content-Type: text/plain; charset=gb2312\r\n"
        b"\r\n" + "纯文本王喆".encode("gbk") + b"\r\n"
        b"--ALT\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"\r\n"
        b"<p>HTML body</p>\r\n"
        b"--ALT--\r\n"
    )
    parsed = parse(raw, workdir)
    assert parsed.attachments == ()
    assert "纯文本王喆" in parsed.body_text
    assert "<p>HTML body</p>" in parsed.body_text


def test_top_level_headers_are_decoded_with_lower_case_names(workdir: Path) -> None:
    parsed = parse(email(b"Subject: =?gbk?B?" + b64("退信", "gbk") + b"?=", b"X-Mailer: Foxmail 7.2"), workdir)
    assert parsed.header("subject") == "退信"
    assert parsed.header("X-Mailer") == "Foxmail 7.2"
    assert ("x-mailer", "Foxmail 7.2") in parsed.headers


def test_message_id_and_content_type_are_recorded(workdir: Path) -> None:
    parsed = parse(submission(attachments=[("x.rar", RAR5)]), workdir)
    assert parsed.message_id == "<test@minghu-soft.cn>"
    assert parsed.content_type == "multipart/mixed"
