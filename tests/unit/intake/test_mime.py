"""The streaming MIME walker decodes every part to exactly the bytes the email package would give."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.domain import ParsedMessage
from daemon.intake.parse import parse_message

names = st.text(alphabet="申报书典型经验证明材料abcXYZ019-_（）", min_size=1, max_size=20)
files = st.lists(st.tuples(names, st.binary(max_size=5000)), min_size=1, max_size=4)


def _build(parts: list[tuple[str, bytes]], text_encoding: str, forward: bool) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ops@minghu-soft.cn"
    message["Subject"] = "济南明湖软件科技有限公司"
    message.set_content("您好，附件为申报材料。\n" * 3, cte=text_encoding)
    for index, (name, data) in enumerate(parts):
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=f"{index}-{name}.rar")
    if not forward:
        return message
    outer = EmailMessage()
    outer["From"] = "office@lanhai-marine.cn"
    outer["Subject"] = "转发：济南明湖软件科技有限公司"
    outer.set_content("转发")
    outer.add_attachment(message)
    return outer


def _parse(raw: bytes) -> tuple[ParsedMessage, list[tuple[str, bytes]]]:
    with TemporaryDirectory() as folder:
        parsed = parse_message(raw, Path(folder))
        assert isinstance(parsed, ParsedMessage)
        contents = [(a.filename, a.path.read_bytes()) for a in parsed.attachments]
    return parsed, contents


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=files, text_encoding=st.sampled_from(["base64", "quoted-printable", "8bit"]), forward=st.booleans())
def test_every_attachment_comes_out_byte_for_byte(
    parts: list[tuple[str, bytes]], text_encoding: str, forward: bool
) -> None:
    raw = _build(parts, text_encoding, forward).as_bytes(policy=SMTP)

    parsed, contents = _parse(raw)

    assert contents == [(f"{index}-{name}.rar", data) for index, (name, data) in enumerate(parts)]
    assert "附件为申报材料" in parsed.body_text


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=400))
def test_quoted_printable_text_decodes_as_the_email_package_decodes_it(text: str) -> None:
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content(text + "\n", cte="quoted-printable")
    raw = message.as_bytes(policy=SMTP)
    reference = message_from_bytes(raw, policy=default).get_content()

    parsed, _ = _parse(raw)

    assert parsed.body_text.replace("\r\n", "\n") == reference.replace("\r\n", "\n")


def test_a_line_longer_than_the_read_limit_survives_whole() -> None:
    """Lines are read at most 64 KiB at a time; a longer one must come out joined, not split or cut."""
    data = b"x" * 200_000 + b"\r\n" + b"y" * 10
    raw = (
        b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"Content-Disposition: attachment; filename=long.bin\r\n\r\n" + data + b"\r\n--B--\r\n"
    )

    _, contents = _parse(raw)

    assert contents == [("long.bin", data)]
