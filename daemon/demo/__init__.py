"""`shenbao demo`: the main job on embedded defaults, for a newcomer.

Real servers on loopback (pymap for IMAP, aiosmtpd for SMTP), an inbox filled with the sample submissions
that ship in daemon/resources/demo/ (built by scripts/make_demo_messages.py), the daemon run over them, and
a table of what happened. It needs no configuration, no network and no `rar` tool.
"""

from __future__ import annotations

import email.utils
import os
import shutil
from dataclasses import astuple, dataclass
from email.parser import BytesHeaderParser
from importlib import resources
from pathlib import Path

import imapclient
from sqlmodel import Session, col, select

from ..app.queries import message_views
from ..config import Settings, load
from ..explain import OUTCOME_WORDS, REPLY_WORDS, STATE_WORDS, titles
from ..runner import Daemon
from ..storage.db import open_database
from ..storage.models import MailboxItem
from ..tables import print_table
from .servers import LoopbackServer, PymapServer, SmtpCapture

MAILBOX = "kejichu2019@shandong.cn"
PASSWORD = "demo"
_CONFIG = """\
# Written by {by}: the loopback servers it started are gone when it ends.
[imap]
host = "{imap.host}"
port = {imap.port}
security = "none"
username = "{imap.user}"
password_env = "{password_env}"
timeout_seconds = {timeout_seconds:g}

[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
username = "{imap.user}"
password_env = "{password_env}"
sender = "山东省工业和信息化厅科技处 <{imap.user}>"

[storage]
database = "sqlite:///shenbao.db"
files = "files"

[campaign]
name = "2022年全国质量标杆"
deadline = "2022-07-05T23:59:59+08:00"
roster = "roster.xlsx"
max_archive_mb = {max_archive_mb:g}
max_message_mb = {max_message_mb:g}

[office]
name = "山东省工业和信息化厅科技处"
phone = "0531-51782580"
contact = "王老师"
notice = "关于组织推荐2022年质量标杆的通知"
"""


def loopback_config(
    imap: LoopbackServer,
    smtp: SmtpCapture,
    *,
    by: str = "`shenbao demo`",
    password_env: str = "SHENBAO_DEMO_PASSWORD",
    timeout_seconds: float = 120,
    max_archive_mb: float = 200,
    max_message_mb: float = 300,
) -> str:
    """A configuration for servers on loopback (no TLS), the campaign of the samples, files beside it."""
    return _CONFIG.format(
        by=by,
        imap=imap,
        smtp=smtp,
        password_env=password_env,
        timeout_seconds=timeout_seconds,
        max_archive_mb=max_archive_mb,
        max_message_mb=max_message_mb,
    )


@dataclass(frozen=True)
class Row:
    sample: str
    outcome: str
    enterprise: str
    problems: str
    folder: str
    reply: str


def run_demo(folder: Path) -> int:
    samples = resources.files("daemon") / "resources" / "demo"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "replies").mkdir(parents=True)
    (folder / "roster.xlsx").write_bytes((samples / "roster.xlsx").read_bytes())
    messages = sorted((entry.name, entry.read_bytes()) for entry in samples.iterdir() if entry.name.endswith(".eml"))
    print(f"shenbao demo: {len(messages)} sample messages, loopback IMAP (pymap) and SMTP (aiosmtpd) servers\n")
    (folder / "inbox").mkdir()
    for name, raw in messages:
        (folder / "inbox" / name).write_bytes(raw)
    with PymapServer(MAILBOX, PASSWORD) as imap, SmtpCapture(folder=folder / "replies", auth=True) as smtp:
        _fill_inbox(imap, messages)
        config = folder / "shenbao.toml"
        config.write_text(loopback_config(imap, smtp), encoding="utf-8")
        os.environ["SHENBAO_DEMO_PASSWORD"] = PASSWORD
        settings = load(config)
        result = Daemon(settings).run_once()
        replies = smtp.wait_for(result.sent.sent, timeout=30)
    rows = _rows(settings, [name for name, _ in messages])
    _print_table(rows)
    print(
        f"\n共核验 {result.report.handled} 封邮件，发出 {len(replies)} 封回复。\n"
        f"  回复（可用邮件客户端打开）：      {folder / 'replies'}/\n"
        f"  数据库（SQLite）：                {folder / 'shenbao.db'}\n"
        f"  原始邮件、压缩包与材料：          {folder / 'files'}/\n"
        f"  样例邮件：                        {folder / 'inbox'}/\n"
        f"  所用配置：                        {config}\n"
        f"不启动服务器，再核验一封样例：\n"
        f"  shenbao check --roster {folder / 'roster.xlsx'} --deadline 2022-07-05T23:59:59+08:00 "
        f"{folder / 'inbox' / '05-missing-proof.eml'}"
    )
    return 0


def _fill_inbox(imap: PymapServer, messages: list[tuple[str, bytes]]) -> None:
    """Each sample is appended with its INTERNALDATE set to its Received: date, as a real server would."""
    client = imapclient.IMAPClient(imap.host, port=imap.port, ssl=False)
    client.login(imap.user, imap.password)
    for _name, raw in messages:
        headers = BytesHeaderParser().parsebytes(raw)
        stamp = email.utils.parsedate_to_datetime(str(headers["Received"]).rpartition(";")[2].strip())
        client.append("INBOX", raw, msg_time=stamp)
    client.logout()


def _rows(settings: Settings, samples: list[str]) -> list[Row]:
    engine = open_database(settings.database_url)
    rules = settings.call_rules()
    rows = []
    with Session(engine) as session:
        items = session.exec(select(MailboxItem).order_by(col(MailboxItem.uid))).all()
        views = {v.id: v for v in message_views(session)}
        for sample, item in zip(samples, items, strict=False):
            view = views.get(item.message_id or 0)
            if view is None:
                continue
            reply = view.replies[0] if view.replies else None
            rows.append(
                Row(
                    sample,
                    OUTCOME_WORDS[view.outcome],
                    view.enterprise or "—",
                    titles(view.all_problems, rules) or "—",
                    item.target or "—",
                    f"{REPLY_WORDS[reply.kind]}（{STATE_WORDS[reply.state.value]}）" if reply else "—",
                )
            )
    return rows


def _print_table(rows: list[Row]) -> None:
    header = Row("样例", "结论", "企业", "问题", "移至文件夹", "回复")
    print_table([astuple(row) for row in (header, *rows)])
