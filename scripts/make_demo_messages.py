#!/usr/bin/env python3
"""Build the sample submissions and roster that `shenbao demo` ships with (daemon/resources/demo/).

Run from the repository root after changing it: `python3 scripts/make_demo_messages.py`. Most archives are
committed RAR fixtures (tests/fixtures/rar/); the one for 青岛, whose form names its own enterprise and is
stamped, is built here with the `rar` tool (../shared/tools/install-rar), as the fixtures are. The emails
have fixed dates, Message-IDs and MIME boundaries; that archive's bytes change with each build.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[1]
RAR = ROOT / "tests" / "fixtures" / "rar"
OUT = ROOT / "daemon" / "resources" / "demo"
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_fixtures as fixtures  # noqa: E402

SHANGHAI = timezone(timedelta(hours=8))
MAILBOX = "kejichu2019@shandong.cn"

ROSTER = [
    ("济南", "济南明湖软件科技有限公司", "明湖软件质量数字化管理经验", "张明", "13863100001", "ops@minghu-soft.cn"),
    ("青岛", "青岛海岳橡胶制品有限公司", "全员质量改进经验", "李海", "13863100002", "zhiliang@haiyue-rubber.com"),
    ("潍坊", "潍坊金穗食品股份有限公司", "食品安全追溯体系", "王穗", "13863100003", "jinsui@163.com"),
    ("烟台", "烟台蓝海船舶装备有限公司", "船舶焊接质量控制", "赵蓝", "13863100004", "office@lanhai-marine.cn"),
    ("淄博", "淄博鲁中陶瓷有限责任公司", "陶瓷窑炉智能质量管控", "孙鲁", "13863100005", "luzhong_cc@126.com"),
    ("临沂", "临沂沂蒙新材料科技（集团）有限公司", "新材料可靠性提升", "周蒙", "13863100006", "ym-xcl@qq.com"),
    ("威海", "威海远航电子有限公司", "电子元器件可靠性工程", "吴航", "13863100007", "yuanhang@whyh.com.cn"),
    ("日照", "日照港湾物流装备有限公司", "港口装备全生命周期质量管理", "郑港", "13863100008", "quality@rzgw.cn"),
]


def message(
    number: int,
    sender: str,
    subject: str,
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    body: str = "您好，附件为我单位申报材料，请查收。",
    when: datetime | None = None,
    headers: Sequence[tuple[str, str]] = (),
    raw_subject: str | None = None,
) -> bytes:
    received = when or datetime(2022, 6, 28, 9, 30, tzinfo=SHANGHAI) + timedelta(minutes=7 * number)
    email = EmailMessage()
    email["Received"] = (
        f"from mx.example.net by mail.shandong.cn with ESMTPS id D{number:04d}; {format_datetime(received)}"
    )
    email["From"] = sender
    email["To"] = MAILBOX
    email["Subject"] = subject
    email["Date"] = format_datetime(received)
    email["Message-ID"] = f"<demo-{number:02d}@example.cn>"
    for name, value in headers:
        email[name] = value
    email.set_content(body)
    for filename, data in attachments:
        email.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    for index, part in enumerate(email.walk()):
        if part.is_multipart():
            part.set_boundary(f"demo-{number:02d}-{index}")
    raw = email.as_bytes(policy=SMTP)
    if raw_subject is not None:  # a subject exactly as a Chinese client encodes it
        raw = raw.replace(f"Subject: {email['Subject']}".encode(), f"Subject: {raw_subject}".encode(), 1)
    return raw


def gbk_word(text: str) -> str:
    """An RFC 2047 word labelled gb2312 holding GBK bytes, as Outlook and Foxmail send it."""
    return "=?gb2312?B?" + base64.b64encode(text.encode("gbk")).decode() + "?="


def rar(name: str) -> bytes:
    return (RAR / name).read_bytes()


def own_archive(enterprise: str) -> bytes:
    """A package in a folder named after the enterprise, with a stamped form naming it and a PDF scan."""
    return fixtures.build_one(
        [
            fixtures.Dir(enterprise),
            fixtures.File(f"{enterprise}/1-申报书.docx", fixtures.make_docx(f"申报单位：{enterprise}", seal=True)),
            fixtures.File(f"{enterprise}/申报书（盖章扫描件）.pdf", fixtures.make_pdf("申报书（盖章扫描件）")),
            fixtures.Dir(f"{enterprise}/典型经验"),
            fixtures.File(f"{enterprise}/典型经验/正文.docx", fixtures.make_docx("全员质量改进经验")),
            fixtures.Dir(f"{enterprise}/证明材料"),
            fixtures.File(f"{enterprise}/证明材料/证明材料汇编.docx", fixtures.make_docx("证明材料汇编")),
        ]
    )


def build() -> dict[str, bytes]:
    names = [row[1] for row in ROSTER]
    jinan, qingdao, weifang, yantai, zibo, linyi, weihai, rizhao = names
    return {
        "01-valid.eml": message(1, "张明 <ops@minghu-soft.cn>", jinan, [(f"{jinan}.rar", rar("valid.rar"))]),
        "02-gbk-subject.eml": message(
            2,
            "zhiliang@haiyue-rubber.com",
            qingdao,
            [(f"{qingdao}.rar", own_archive(qingdao))],
            raw_subject=gbk_word(qingdao),
        ),
        "03-reply-prefix-fullwidth.eml": message(
            3, "ym-xcl@qq.com", "回复：临沂沂蒙新材料科技(集团)有限公司", [(f"{linyi}.rar", rar("solid.rar"))]
        ),
        "04-typo-in-name.eml": message(
            4, "office@lanhai-marine.cn", "烟台蓝海船泊装备有限公司", [(f"{yantai}.rar", rar("valid.rar"))]
        ),
        "05-missing-proof.eml": message(5, "jinsui@163.com", weifang, [(f"{weifang}.rar", rar("missing_proof.rar"))]),
        "06-encrypted.eml": message(6, "luzhong_cc@126.com", zibo, [(f"{zibo}.rar", rar("encrypted.rar"))]),
        "07-zip-not-rar.eml": message(7, "yuanhang@whyh.com.cn", weihai, [(f"{weihai}.zip", rar("not_rar.rar"))]),
        "08-pdf-form.eml": message(8, "quality@rzgw.cn", rizhao, [(f"{rizhao}.rar", rar("pdf_form.rar"))]),
        "09-auto-reply.eml": message(
            9,
            "ops@minghu-soft.cn",
            "自动回复：您好，我已休假，7月1日返回",
            headers=[("Auto-Submitted", "auto-replied")],
            body="您好，我正在休假，将于7月1日返回。",
        ),
        "10-large-attachment-link.eml": message(
            10,
            "office@lanhai-marine.cn",
            yantai,
            body="您好，申报材料较大，已通过QQ邮箱超大附件发送：\n"
            "https://mail.qq.com/cgi-bin/ftnExs_download?k=5a3b2c&t=exs_ftn_download&code=9f2e\n",
        ),
        "11-question.eml": message(
            11, "someone@example.com", "请问申报书需要盖章吗？", body="您好，请问申报书需要加盖公章吗？谢谢。"
        ),
        "12-late.eml": message(
            12,
            "luzhong_cc@126.com",
            zibo,
            [(f"{zibo}.rar", rar("valid.rar"))],
            when=datetime(2022, 7, 6, 10, 15, tzinfo=SHANGHAI),
        ),
        "13-second-version.eml": message(
            13,
            "ops@minghu-soft.cn",
            jinan,
            [(f"{jinan}.rar", rar("doc_format.rar"))],
            when=datetime(2022, 6, 30, 16, 5, tzinfo=SHANGHAI),
        ),
    }


def roster_workbook(path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "汇总表"
    sheet.append(["2022年全国质量标杆申报汇总表"])
    sheet.merge_cells("A1:G1")
    sheet.append(["序号", "所属市", "企业名称", "质量标杆名称", "联系人", "联系电话", "电子邮箱"])
    for number, row in enumerate(ROSTER, start=1):
        sheet.append([number, *row])
    workbook.properties.created = datetime(2022, 6, 1)
    workbook.save(path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.eml"):
        old.unlink()
    for name, raw in build().items():
        (OUT / name).write_bytes(raw)
        print(f"{len(raw):>8}  {name}")
    roster_workbook(OUT / "roster.xlsx")
    print(f"{(OUT / 'roster.xlsx').stat().st_size:>8}  roster.xlsx")


if __name__ == "__main__":
    main()
