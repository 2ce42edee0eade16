"""City bureaus' emails (issue 9) through `check`, `process`, staff decisions, the replies, digest and workbook.

The fixtures (tests/fixtures/bureaus, built by make_bureau_fixtures.py) are real emails with real PDF
letters, .xlsx and .xls tables in the notice's layouts and real RARs; `expected.json` says what each email
and each city's bundle should yield. Emails of one bundle are processed in file order into one database.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SHANGHAI, write_roster
from daemon_support import FOLDERS, TIMEOUT, append, imap_env, message_ids_in, parse, run_once
from daemon_support import write_config as write_daemon_config
from openpyxl import load_workbook
from sqlmodel import Session, col, select

from daemon.app.queries import bundle_views, enterprise_rows
from daemon.app.views import Standing
from daemon.cli import main
from daemon.config import load
from daemon.demo.servers import PymapServer, SmtpCapture
from daemon.service.runtime import Runtime
from daemon.staff import digest, reminders
from daemon.storage.models import BureauSender, MessageRecord, Nomination, OutboxItem
from daemon.storage.states import NominationSource

BUREAUS = FIXTURES / "bureaus"
SPEC = json.loads((BUREAUS / "expected.json").read_text(encoding="utf-8"))
EMAILS = sorted(SPEC["cases"])
QINGDAO_BUNDLE = EMAILS[:3]


def write_config(folder: Path, *, roster: Path | None = None, smtp: str = "") -> Path:
    """Both calls of the notice, the bureaus' fragment, storage beside the file."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        smtp,
        '[storage]\ndatabase = "sqlite:///shenbao.db"\nfiles = "files"',
        '[campaign]\nname = "2022年质量标杆"',
    ]
    if roster is not None:
        lines.append(f'roster = "{roster}"')
    for code, call in SPEC["calls"].items():
        keys = "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in call.items())
        deadline = 'deadline = "2022-07-05T23:59:59+08:00"\n' if code == "national" else ""
        lines.append(
            f'[[campaign.calls]]\ncode = "{code}"\n{keys}bureau_deadline = "{SPEC["bureau_deadline"]}"\n{deadline}'
        )
    lines.append((BUREAUS / "config-bureaus.toml").read_text(encoding="utf-8"))
    path = folder / "shenbao.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def process(config: Path, name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["process", "--json", "--config", str(config), str(BUREAUS / "messages" / name)]) == 0
    line: dict[str, Any] = json.loads(capsys.readouterr().out.splitlines()[-1])
    return line


def compared(line: dict[str, Any]) -> dict[str, Any]:
    """The fields expected.json fixes for one email, from a JSON line or an expected case."""
    table = line.get("table_enterprises", (line.get("table") or {}).get("enterprises") if line.get("table") else None)
    items = sorted(
        (
            i["enterprise"],
            i["verdict"],
            tuple(sorted({p["code"] if isinstance(p, dict) else p for p in i.get("problems", i.get("codes", []))})),
        )
        for i in line.get("items") or []
    )
    codes = line.get("codes") or sorted({p["code"] for p in line.get("problems") or []})
    return {
        "verdict": line["verdict"],
        "city": line.get("city"),
        "call": line.get("call"),
        "letter": bool(line.get("letter")),
        "table": sorted(table) if table else None,
        "items": items if line["verdict"] != "review" else None,
        "codes": sorted(set(codes)),
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "conf")


@pytest.fixture
def everything(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """Every fixture email processed in file order: each email's JSON line."""
    return {name: process(config, name, capsys) for name in EMAILS}


@pytest.mark.parametrize("name", EMAILS)
def test_each_bureau_email_is_judged_as_expected_knowing_its_bundles_earlier_emails(
    everything: dict[str, dict[str, Any]], name: str
) -> None:
    assert compared(everything[name]) == compared(SPEC["cases"][name])


def test_each_citys_bundle_ends_as_expected(
    everything: dict[str, dict[str, Any]], config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_bundles_as_expected(config, capsys)


def assert_bundles_as_expected(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status --bundles` shows each city's bundle as expected.json's `bundles` say."""
    assert main(["status", "--json", "--bundles", "--config", str(config)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bundles = {line["bundle"]: line for line in lines if "bundle" in line}
    fields = ("letter", "table", "complete", "missing", "enterprises_accepted", "table_enterprises")
    for key, want in SPEC["bundles"].items():
        got = bundles[key]
        assert {f: _sorted(got[f]) for f in fields} == {f: _sorted(want[f]) for f in fields}, key
    assert set(bundles) == set(SPEC["bundles"])


def _sorted(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def test_check_prints_the_bureau_shape_for_a_bureau_email(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "04-outer-rar.eml"
    assert main(["check", "--json", "--config", str(config), str(BUREAUS / "messages" / name)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["verdict"] == "bureau"
    assert (line["city"], line["call"]) == ("淄博", "province")
    assert line["letter"]["pages"] >= 1
    assert len(line["table"]["enterprises"]) == 3
    assert {i["verdict"] for i in line["items"]} == {"accepted"}
    assert all(len(i["documents"]) == 3 for i in line["items"])


def test_the_enterprises_of_a_table_join_the_roster_for_that_call(
    everything: dict[str, dict[str, Any]], config: Path
) -> None:
    runtime = Runtime.open(load(config))
    with Session(runtime.engine) as session:
        rows = enterprise_rows(session, city="青岛")
    assert {(r.name, r.call, r.standing) for r in rows} == {
        (name, "province", Standing.ACCEPTED) for name in SPEC["bundles"]["青岛-province"]["table_enterprises"]
    }
    assert all(r.title and r.contact for r in rows)


def test_an_unlisted_bureau_like_sender_is_confirmed_by_a_person_and_its_bundle_recorded(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = process(config, "10-unlisted-bureau-sender.eml", capsys)
    assert first["verdict"] == "review"
    runtime = Runtime.open(load(config))

    with Session(runtime.engine) as session:
        before = session.exec(select(Nomination)).all()
        from daemon.app import actions

        done = actions.decide(
            session,
            runtime.planner(),
            runtime.recorder(),
            first["reference"],
            accept=True,
            note="经电话核实，为济宁市工信局新启用的邮箱",
            actor="tester",
            moment=datetime(2022, 6, 25, 9, tzinfo=SHANGHAI),
        )
        session.commit()
    with Session(runtime.engine) as session:
        sender = session.get(BureauSender, "jnsgxjkjk@163.com")
        record = session.get(MessageRecord, first["id"])
        bundles = bundle_views(session, runtime.rules, city="济宁")
        replies = session.exec(select(OutboxItem).where(OutboxItem.message_id == first["id"])).all()
    assert before == []
    assert done.action == "confirmed"
    assert sender is not None and sender.city == "济宁"
    assert record is not None and record.outcome.value == "bureau"
    assert [(b.city, b.call, b.complete) for b in bundles] == [("济宁", "province", True)]
    assert [r.kind for r in replies][-1] == "bureau"


def test_a_direct_sender_is_accepted_into_a_call_by_a_person(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = process(config, "11-direct-sender.eml", capsys)
    runtime = Runtime.open(load(config))
    from daemon.app import actions

    with Session(runtime.engine) as session:
        actions.decide(
            session,
            runtime.planner(),
            runtime.recorder(),
            line["reference"],
            accept=True,
            note="省属企业，直接报送",
            actor="tester",
            moment=datetime(2022, 6, 26, tzinfo=SHANGHAI),
            call="national",
        )
        session.commit()
        rows = enterprise_rows(session, call="national")
        sources = session.exec(select(Nomination.source).where(col(Nomination.call) == "national")).all()
    assert [(r.name, r.standing) for r in rows] == [(line["enterprise"], Standing.ACCEPTED)]
    assert sources == [NominationSource.STAFF]


def reply_text(config: Path, message_id: int) -> str:
    runtime = Runtime.open(load(config))
    with Session(runtime.engine) as session:
        item = session.exec(select(OutboxItem).where(OutboxItem.message_id == message_id)).one()
    parsed = email.message_from_bytes(item.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_the_reply_to_each_bureau_email_says_what_arrived_and_what_the_city_still_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "conf")
    lines = [process(config, name, capsys) for name in QINGDAO_BUNDLE]
    runtime = Runtime.open(load(config))
    planner = runtime.planner()
    with Session(runtime.engine) as session:
        for line in lines:
            record = session.get(MessageRecord, line["id"])
            assert record is not None
            planner.queue(session, record, datetime(2022, 6, 22, 12, tzinfo=SHANGHAI))
        session.commit()
    first, second, third = (reply_text(config, line["id"]) for line in lines)

    assert first.startswith("青岛市工业和信息化局：")
    assert "推荐文件 1 份" in first and "列有 4 家企业" in first
    assert first.count("尚无申报材料压缩包") == 4
    assert "其余材料可在 2022年06月26日 23:59" in first
    assert "企业申报材料压缩包 2 个" in second and second.count("：受理") == 2
    assert second.count("尚无申报材料压缩包") == 2
    assert "尚需补充或更正" not in third and third.count("：受理") == 2
    assert all("无需企业另行报送" in text for text in (first, second, third))


def test_archives_a_bureau_sent_are_not_taken_for_a_strangers_submission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table lists each enterprise's contact address; the bureau's own address is none of them."""
    config = write_config(tmp_path / "conf")
    process(config, "13-xls-table.eml", capsys)
    runtime = Runtime.open(load(config))
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, "2022年质量标杆", datetime(2022, 6, 25, 9, tzinfo=SHANGHAI))
        rows = enterprise_rows(session)

    accepted = [row for row in rows if row.standing is Standing.ACCEPTED]
    assert accepted and all(row.email for row in accepted)
    assert not any(row.stranger for row in accepted)
    assert built.context["needs_person"] == []


def test_the_digest_and_workbook_after_the_three_email_bundle_show_the_city(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "conf")
    for name in QINGDAO_BUNDLE:
        process(config, name, capsys)
    runtime = Runtime.open(load(config))
    with Session(runtime.engine) as session:
        built = digest.gather(session, runtime.rules, "2022年质量标杆", datetime(2022, 6, 23, 9, tzinfo=SHANGHAI))

    province = next(call for call in built.context["calls"] if call["name"] == "2022年全省质量标杆")
    [bundle] = province["bundles"]
    assert (bundle["city"], bundle["table"], bundle["archives"], bundle["complete"]) == ("青岛", "4 家", "4/4", True)
    assert bundle["letter"].startswith("✔")
    assert province["counts"]["已受理"] == 4
    book = load_workbook(io.BytesIO(built.workbook))
    sheet = book["2022年全省质量标杆"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [(r[1], r[6]) for r in rows] == [("青岛", "已受理")] * 4
    assert all(r[3] for r in rows)  # 质量标杆名称 from the table
    bundles = book["各市报送"]
    assert [c.value for c in bundles[2]][:6] == [
        "青岛",
        "2022年全省质量标杆",
        bundles[2][2].value,
        bundles[2][3].value,
        4,
        4,
    ]


def test_reminders_go_to_recommended_enterprises_only_for_calls_they_send_to_themselves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = write_roster(tmp_path / "roster.xlsx")  # the national call's roster (enterprises write to it)
    config = write_config(tmp_path / "conf", roster=roster)
    process(config, "01-three-emails-1-letter-table.eml", capsys)  # four enterprises recommended, provincial
    runtime = Runtime.open(load(config))
    runtime.refresh_rosters()
    settings = load(config)
    moment = datetime(2022, 7, 4, 9, 30, tzinfo=SHANGHAI)  # one day before the enterprises' national deadline

    with Session(runtime.engine) as session:
        found = reminders.candidates(session, runtime.rules, settings.reminders, moment)

    reminded = {(c.call.code, c.name) for c in found if c.remind}
    assert {call for call, _ in reminded} == {"national"}
    assert not any(name.startswith("青岛崂山") for _, name in reminded)
    assert ("national", "济南明湖软件科技有限公司") in reminded


def test_bureaus_with_an_incomplete_bundle_are_reminded_before_their_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "conf")
    for name in QINGDAO_BUNDLE[:2]:
        process(config, name, capsys)
    runtime = Runtime.open(load(config))
    moment = datetime(2022, 6, 25, 9, 30, tzinfo=SHANGHAI)  # one day before the bureaus' deadline

    with Session(runtime.engine) as session:
        found = reminders.candidates(session, runtime.rules, load(config).reminders, moment)

    qingdao = [c for c in found if c.city == "青岛" and c.call.code == "province"]
    assert [c.remind for c in qingdao] == [False]  # its senders are a domain: no address to write to
    jinan = [c for c in found if c.city == "济南" and c.call.code == "province"]
    assert [(c.remind, c.addresses) for c in jinan] == [(True, ("jngxj_jsc@jinan.gov.cn",))]
    assert "推荐文件、汇总表及各企业申报材料" in jinan[0].lacks


def test_the_daemon_on_pymap_answers_each_bureau_email_once_and_files_it_by_its_verdict(
    imap: PymapServer,
    smtp: SmtpCapture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every bureau email as clerks send them, through IMAP in one pass: one reply each, each filed by its
    verdict, and each city's bundle as `process` makes it."""
    for name, value in imap_env(imap).items():
        monkeypatch.setenv(name, value)
    servers = write_daemon_config(tmp_path / "servers", imap, smtp, roster=False).read_text(encoding="utf-8")
    mail = servers.split("[storage]")[0]  # the [imap] and [smtp] sections
    config = write_config(tmp_path / "office", smtp=mail)
    heads = {}
    for name in EMAILS:
        raw = (BUREAUS / "messages" / name).read_bytes()
        head = email.message_from_bytes(raw, policy=email.policy.default)
        heads[str(head["Message-ID"])] = (name, str(head["From"]))
        append(imap, raw, when=parsedate_to_datetime(str(head["Date"])))

    run_once(config)

    answered = [parse(message.data) for message in smtp.wait_for(len(EMAILS), TIMEOUT)]
    assert message_ids_in(imap, "INBOX") == []
    for verdict, folder in (("bureau", FOLDERS["bureau"]), ("review", FOLDERS["review"])):
        filed = {heads[message_id][0] for message_id in message_ids_in(imap, folder)}
        assert filed == {name for name in EMAILS if SPEC["cases"][name]["verdict"] == verdict}, verdict
    assert sorted(str(reply["In-Reply-To"]) for reply in answered) == sorted(heads)  # one each
    for reply in answered:
        _name, sender = heads[str(reply["In-Reply-To"])]
        assert str(reply["To"]) in sender  # to whoever wrote
    assert_bundles_as_expected(config, capsys)
