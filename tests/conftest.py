"""Shared test helpers: paths to the committed fixtures, a builder for submission emails, and the databases
(`database_url`: a fresh SQLite file, then a fresh database on a real PostgreSQL server)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from postgres import PostgresServer, unavailable_reason

from daemon.demo.servers import PymapServer, SmtpCapture

FIXTURES = Path(__file__).parent / "fixtures"
RAR = FIXTURES / "rar"
SHANGHAI = timezone(timedelta(hours=8))

ENTERPRISE = "济南明湖软件科技有限公司"
RECEIVED = datetime(2022, 6, 28, 9, 30, tzinfo=SHANGHAI)


def rar(name: str) -> bytes:
    """The bytes of a committed RAR fixture (see tests/fixtures/README.md)."""
    return (RAR / name).read_bytes()


def submission(
    subject: str = ENTERPRISE,
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    sender: str = "ops@minghu-soft.cn",
    body: str = "您好，附件为申报材料，请查收。",
    received: datetime | None = RECEIVED,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A submission email as a mail client would send it, with a Received: header stamped by our server."""
    message = EmailMessage()
    if received is not None:
        message["Received"] = f"from mx.example.net by mail.shandong.cn with ESMTPS; {format_datetime(received)}"
    message["From"] = sender
    message["To"] = "kejichu2019@shandong.cn"
    message["Subject"] = subject
    message["Date"] = format_datetime(RECEIVED)
    message["Message-ID"] = "<test@minghu-soft.cn>"
    for name, value in headers:
        message[name] = value
    message.set_content(body)
    for filename, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    return message.as_bytes()


def valid_submission(**kwargs: object) -> bytes:
    """The happy path: the enterprise's full name as subject and valid.rar named after it."""
    return submission(attachments=[(f"{ENTERPRISE}.rar", rar("valid.rar"))], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


ROSTER_ROWS = [
    ("济南", ENTERPRISE, "明湖软件质量数字化管理经验", "张工", "13863100001", "ops@minghu-soft.cn"),
    ("青岛", "青岛海岳橡胶制品有限公司", "全员质量改进经验", "李工", "13863100002", "zhiliang@haiyue-rubber.com"),
    ("临沂", "临沂沂蒙新材料科技（集团）有限公司", "新材料可靠性提升", "王工", "13863100006", "ym-xcl@qq.com"),
]


def write_roster(path: Path, rows: Sequence[tuple[str, ...]] = ROSTER_ROWS, *, title: bool = True) -> Path:
    """A summary table as offices fill it: a merged title row, then the header row, then one row each."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "汇总表"
    if title:
        sheet.append(["2022年全国质量标杆申报汇总表"])
        sheet.merge_cells("A1:G1")
    sheet.append(["序号", "所属市", "企业名称", "质量标杆名称", "联系人", "联系电话", "电子邮箱"])
    for number, row in enumerate(rows, start=1):
        sheet.append([number, *row])
    workbook.save(path)
    return path


@pytest.fixture
def roster_file(tmp_path: Path) -> Path:
    return write_roster(tmp_path / "roster.xlsx")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (tests/support/postgres.py), stopped at the end.

    Skipped where its binaries are missing and we are not root; as root (CI) that is an error, since
    `scripts/dev test` installs them.
    """
    reason = unavailable_reason()
    if reason is not None:
        if os.geteuid() != 0:
            pytest.skip(reason)
        pytest.fail(reason, pytrace=False)
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, as a URL for the configuration or `open_database`: a new SQLite
    file under tmp_path, then a new database on the session's PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'shenbao.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def imap() -> Iterator[PymapServer]:
    """The office's mailbox on a loopback pymap server (tests of one connection's behaviour define their own)."""
    with PymapServer("kejichu2019@shandong.cn", "imap-secret") as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    """The outgoing server on loopback, asking for the login the daemon's configuration gives."""
    with SmtpCapture(auth=True) as capture:
        yield capture
