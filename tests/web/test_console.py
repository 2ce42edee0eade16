"""The console's parts on their own: accounts and their command, the login limiter's minute, and the
settings that change what the server answers (Secure cookies, /metrics off loopback), through Flask's
test client."""

from __future__ import annotations

import getpass
import io
import re
from pathlib import Path

import pytest
from sqlmodel import Session, select
from web_support import LINYI, ROWS, make_site

from daemon.app.accounts import AccountError, add_user, authenticate, user_named
from daemon.app.audit import COMMAND_LINE
from daemon.app.queries import audit_entries, enterprise_rows
from daemon.cli import main
from daemon.config import load
from daemon.demo.servers import SmtpCapture
from daemon.service.runtime import Runtime
from daemon.storage.models import WebUser, now
from daemon.storage.states import UserRole
from daemon.web.app import create_app
from daemon.web.limits import LoginLimiter


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "shenbao.toml"
    path.write_text('[storage]\ndatabase = "sqlite:///var/shenbao.db"\nfiles = "var/files"\n', encoding="utf-8")
    return path


def with_web(config: Path, web: str) -> Runtime:
    config.write_text(config.read_text(encoding="utf-8") + f"\n[web]\n{web}\n", encoding="utf-8")
    return Runtime.open(load(config))


def test_a_password_is_kept_only_as_an_argon2id_hash(config: Path) -> None:
    runtime = Runtime.open(load(config))
    with Session(runtime.engine) as session:
        add_user(session, "lisi", "a long enough password", UserRole.VIEWER, now())
        session.commit()
        stored = session.exec(select(WebUser)).one()

        assert stored.password_hash.startswith("$argon2id$") and "a long enough password" not in stored.password_hash
        assert authenticate(session, "lisi", "a long enough password") == user_named(session, "lisi")
        assert authenticate(session, "lisi", "a wrong password") is None
        assert authenticate(session, "nobody", "a long enough password") is None
        with pytest.raises(AccountError, match="已存在"):
            add_user(session, "lisi", "another long password", UserRole.STAFF, now())
        with pytest.raises(AccountError, match="至少"):
            add_user(session, "wangwu", "short", UserRole.STAFF, now())
        with pytest.raises(AccountError, match="用户名"):
            add_user(session, "wang wu", "a long enough password", UserRole.STAFF, now())


def test_user_add_list_and_remove(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "add", "zhaoliu", "--role", "admin", "--password-stdin", "--config", str(config)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "add", "zhaoliu", "--password-stdin", "--config", str(config)]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["user", "add", "qianqi", "--config", str(config)]) == 2  # no terminal, no --password-stdin
    assert main(["user", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr()
    assert main(["user", "remove", "zhaoliu", "--config", str(config)]) == 0
    assert main(["user", "remove", "zhaoliu", "--config", str(config)]) == 2

    assert "已添加用户 zhaoliu（管理员）" in listed.out
    assert "zhaoliu\t管理员" in listed.out
    assert "已存在" in listed.err and "--password-stdin" in listed.err


def test_the_limiter_forgets_failures_after_a_minute() -> None:
    clock = [1000.0]
    limiter = LoginLimiter(clock=lambda: clock[0])
    for _ in range(5):
        assert not limiter.refused("zhangsan", "192.0.2.1")
        limiter.failed("zhangsan", "192.0.2.1")

    refused = limiter.refused("ZhangSan", "192.0.2.9"), limiter.refused("lisi", "192.0.2.1")
    clock[0] += 60.5

    assert refused == (True, True)
    assert not limiter.refused("zhangsan", "192.0.2.1")


def test_secure_cookies_when_served_over_tls(config: Path) -> None:
    app = create_app(with_web(config, "secure_cookies = true"), secret_key=b"k" * 32)

    answer = app.test_client().get("/login")

    assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]


def test_metrics_off_loopback_need_a_login_or_the_token(config: Path) -> None:
    app = create_app(with_web(config, 'listen = "0.0.0.0:8080"'), secret_key=b"k" * 32, metrics_token="s3cret")
    client = app.test_client()

    anonymous = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})

    assert (anonymous.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert b"shenbao_outbox" in right.data


def test_pages_and_the_stylesheet_come_from_the_package(config: Path) -> None:
    app = create_app(Runtime.open(load(config)), secret_key=b"k" * 32)
    client = app.test_client()

    login = client.get("/login")
    style = client.get("/static/console.css")

    assert login.status_code == 200 and "登录" in login.get_data(as_text=True)
    assert style.status_code == 200 and b"Noto Sans CJK SC" in style.data
    assert Path(app.root_path) == Path(__file__).resolve().parents[2] / "daemon" / "web"


def test_a_decision_made_with_the_command_is_in_the_audit_log_too(tmp_path: Path) -> None:
    with SmtpCapture() as smtp:
        site = make_site(tmp_path / "site", smtp.port, bureaus=False)
        site.shenbao("decide", "SB-000003", "--reject", "--note", "请补充证明材料")
        smtp.wait_for(1)

    runtime = site.runtime()
    with Session(runtime.engine) as session:
        [entry] = audit_entries(session, message_ids=[3])
        [linyi] = enterprise_rows(session, search=LINYI)
    assert (entry.actor, entry.action, entry.detail, entry.address) == (
        getpass.getuser(),
        "rejected",
        "请补充证明材料",
        COMMAND_LINE,
    )
    assert entry.enterprise_id == linyi.enterprise_id


def test_the_review_page_lists_the_rosters_names_once_for_all_its_cards(tmp_path: Path) -> None:
    """A list of names in every card made the 待人工 page of 5,000 enterprises and 1,200 cards 165 MB."""
    site = make_site(tmp_path / "site", None, bureaus=True)
    runtime = site.runtime()
    with Session(runtime.engine) as session:
        add_user(session, "lisi", "a long enough password", UserRole.STAFF, now())
        session.commit()
    client = create_app(runtime, secret_key=b"k" * 32).test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert token is not None
    client.post("/login", data={"csrf": token.group(1), "name": "lisi", "password": "a long enough password"})

    page = client.get("/review").get_data(as_text=True)

    assert page.count('list="enterprise-names"') >= 2  # cards that offer to attribute the message
    assert page.count("<datalist") == 1
    names = re.search(r'<datalist id="enterprise-names">(.*?)</datalist>', page)
    assert names is not None and {row[1] for row in ROWS} <= set(re.findall(r'<option value="([^"]+)">', names[1]))


def test_the_enterprise_list_comes_in_pages_that_keep_the_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call of 5,000 enterprises in one page took a second to build and to show: the list has pages."""
    site = make_site(tmp_path / "site", None, bureaus=False)
    runtime = site.runtime()
    with Session(runtime.engine) as session:
        add_user(session, "lisi", "a long enough password", UserRole.VIEWER, now())
        session.commit()
        names = [row.name for row in enterprise_rows(session)]
    monkeypatch.setattr("daemon.web.pages.LIST_PAGE", 2)
    client = create_app(runtime, secret_key=b"k" * 32).test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert token is not None
    client.post("/login", data={"csrf": token.group(1), "name": "lisi", "password": "a long enough password"})

    def listed(url: str) -> tuple[list[str], str]:
        page = client.get(url).get_data(as_text=True)
        pager = re.search(r'<nav class="pager">(.*?)</nav>', page, re.S)
        return re.findall(r'<a href="/enterprises/\d+">([^<]+)</a>', page), pager[1] if pager else ""

    first, pager = listed("/enterprises")
    assert len(names) == 4 and first == names[:2]
    assert "第 1 / 2 页：第 1–2 家" in pager and 'href="/enterprises?page=2"' in pager and "上一页" not in pager
    second, pager = listed("/enterprises?page=2")
    assert second == names[2:] and "下一页" not in pager
    assert listed("/enterprises?page=99")[0] == names[2:]  # past the end: the last page
    assert listed("/enterprises?q=" + LINYI) == ([LINYI], "")  # one page: no pager
    monkeypatch.setattr("daemon.web.pages.LIST_PAGE", 1)
    jinan, pager = listed("/enterprises?city=济南&standing=missing")
    assert len(jinan) == 1 and pager == ""  # 济南泉城 alone has sent nothing
    jinan, pager = listed("/enterprises?city=济南")
    assert len(jinan) == 1 and "page=2" in pager and "city=%E6%B5%8E%E5%8D%97" in pager
