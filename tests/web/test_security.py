"""The console's safety over HTTP, against `shenbao web` itself on a loopback port (issue 12, point 2): no
page or download without login, CSRF tokens, the login limiter, roles, downloads by id only, /metrics.

The server runs with `behind_proxy = true`, as behind nginx: it takes the client's address from
X-Forwarded-For, so the tests can speak from several addresses. Replies stay queued (no [smtp]).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import zipfile
from collections.abc import Iterator

import pytest
import requests
from sqlmodel import Session
from web_support import JINAN, PASSWORD, Site, WebServer, csrf_of, logged_in, make_site

from daemon.app.queries import documents_of, message_views

STAFF, VIEWER, ADMIN, GUESSED = "staff1", "viewer1", "admin1", "guessed"

PAGES = (
    "/",
    "/enterprises",
    "/enterprises/1",
    "/messages/1",
    "/review",
    "/downloads",
    "/audit",
    "/documents/1",
    "/bureau-files/1",
    "/downloads/workbook",
    "/downloads/export.zip",
)
ACTIONS = ("/messages/2/decide", "/messages/2/resend", "/messages/2/attach", "/logout")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    made = make_site(tmp_path_factory.mktemp("web-security") / "site", None, bureaus=False, web="behind_proxy = true")
    for name, role in ((STAFF, "staff"), (VIEWER, "viewer"), (ADMIN, "admin"), (GUESSED, "staff")):
        made.add_user(name, role)
    with WebServer(made):
        yield made


def login(site: Site, name: str, password: str, address: str) -> int:
    """One login attempt from `address` (as nginx would forward it): the status of the answer."""
    http_session = requests.Session()
    form = http_session.get(f"{site.url}/login", timeout=30)
    answer = http_session.post(
        f"{site.url}/login",
        data={"csrf": csrf_of(form.text), "name": name, "password": password},
        headers={"X-Forwarded-For": address},
        allow_redirects=False,
        timeout=30,
    )
    return answer.status_code


def decisions_and_replies(site: Site, message_id: int) -> tuple[int, int]:
    with Session(site.runtime().engine) as session:
        [view] = message_views(session, ids=[message_id])
    return len(view.decisions), len(view.replies)


def test_every_page_and_download_is_refused_without_login(site: Site) -> None:
    for path in PAGES:
        answer = requests.get(site.url + path, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/login?next="), path
        assert "Content-Disposition" not in answer.headers and JINAN not in answer.text, path
    for path in ACTIONS:
        answer = requests.post(site.url + path, data={"verdict": "accept", "note": "x"}, timeout=30)
        assert answer.status_code == 401, path
    assert decisions_and_replies(site, 2) == (0, 0)


def test_the_session_cookie_is_httponly_and_samesite(site: Site) -> None:
    answer = requests.get(f"{site.url}/login", timeout=30)

    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("shenbao_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; [web] secure_cookies adds it (test_console.py)
    assert (
        answer.headers["X-Frame-Options"] == "DENY"
        and "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    )


def test_a_post_without_a_valid_csrf_token_is_refused(site: Site) -> None:
    staff = logged_in(site, STAFF)
    token = csrf_of(staff.get(f"{site.url}/messages/3", timeout=30).text)
    form = {"verdict": "reject", "note": "请补充证明材料"}

    missing = staff.post(f"{site.url}/messages/3/decide", data=form, allow_redirects=False, timeout=30)
    forged = staff.post(
        f"{site.url}/messages/3/decide", data={**form, "csrf": "x" * 43}, allow_redirects=False, timeout=30
    )
    other = logged_in(site, ADMIN)
    foreign = other.post(
        f"{site.url}/messages/3/decide", data={**form, "csrf": token}, allow_redirects=False, timeout=30
    )
    login_without = requests.post(
        f"{site.url}/login", data={"name": STAFF, "password": PASSWORD}, allow_redirects=False, timeout=30
    )

    assert (missing.status_code, forged.status_code, foreign.status_code, login_without.status_code) == (
        400,
        400,
        400,
        400,
    )
    assert "表单令牌" in missing.text
    assert decisions_and_replies(site, 3) == (0, 0)
    done = staff.post(f"{site.url}/messages/3/decide", data={**form, "csrf": token}, allow_redirects=False, timeout=30)
    assert done.status_code == 302
    assert decisions_and_replies(site, 3) == (1, 1)  # the same form with its token goes through


def test_the_sixth_wrong_password_in_a_minute_for_one_account_is_refused(site: Site) -> None:
    tries = [login(site, GUESSED, f"wrong-{n}", f"203.0.113.{n}") for n in range(1, 6)]

    sixth = login(site, GUESSED, f"wrong-{6}", "203.0.113.6")
    right = login(site, GUESSED, PASSWORD, "203.0.113.7")

    assert tries == [401] * 5
    assert (sixth, right) == (429, 429)
    assert login(site, STAFF, PASSWORD, "203.0.113.8") == 302  # another account is not locked


def test_the_sixth_wrong_password_in_a_minute_from_one_address_is_refused(site: Site) -> None:
    tries = [login(site, f"nobody{n}", PASSWORD, "198.51.100.7") for n in range(5)]

    sixth = login(site, STAFF, PASSWORD, "198.51.100.7")

    assert tries == [401] * 5
    assert sixth == 429
    assert login(site, STAFF, PASSWORD, "198.51.100.8") == 302  # the account itself is not locked


def test_a_viewer_sees_no_actions_and_their_posts_are_refused(site: Site) -> None:
    viewer = logged_in(site, VIEWER)
    page = viewer.get(f"{site.url}/messages/2", timeout=30).text
    token = csrf_of(page)

    answers = [
        viewer.post(
            f"{site.url}/messages/2/decide",
            data={"csrf": token, "verdict": "reject", "note": "x"},
            allow_redirects=False,
            timeout=30,
        ),
        viewer.post(f"{site.url}/messages/2/resend", data={"csrf": token}, allow_redirects=False, timeout=30),
        viewer.post(
            f"{site.url}/messages/2/attach",
            data={"csrf": token},
            files={"archives": ("青岛海岳橡胶制品有限公司.rar", b"Rar!")},
            allow_redirects=False,
            timeout=30,
        ),
        viewer.get(f"{site.url}/audit", allow_redirects=False, timeout=30),
    ]

    assert "SB-000002" in page and "/decide" not in page and "/attach" not in page and "/resend" not in page
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert "只读" in answers[0].text
    assert decisions_and_replies(site, 2) == (0, 0)
    assert viewer.get(f"{site.url}/downloads/workbook", timeout=30).status_code == 200  # viewers may read


def test_documents_are_served_by_their_id_as_downloads_and_nothing_else_is(site: Site) -> None:
    staff = logged_in(site, STAFF)
    runtime = site.runtime()
    with Session(runtime.engine) as session:
        [jinan] = message_views(session, ids=[1])
        documents = documents_of(session, [p.id for v in message_views(session) for p in v.packages])
    first = documents[jinan.packages[0].id][0]
    last = max(d.id for found in documents.values() for d in found)

    answer = staff.get(f"{site.url}/documents/{first.id}", timeout=30)

    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in answer.headers["Content-Disposition"]
    assert answer.content == runtime.blobs.path(first.sha256).read_bytes()
    assert staff.get(f"{site.url}/documents/{last + 1}", timeout=30).status_code == 404
    assert staff.get(f"{site.url}/bureau-files/{first.id}", timeout=30).status_code == 404  # a document's id
    cookie = "; ".join(f"{c.name}={c.value}" for c in staff.cookies)
    for path in (
        f"/documents/{first.sha256}",  # by the blob's name: never
        "/documents/..%2F..%2Fshenbao.toml",
        "/documents/../shenbao.toml",
        "/documents/1/../../../../etc/passwd",
        "/static/..%2Fshenbao.toml",
        "/static/../../../shenbao.toml",
        "/bureau-files/..%2F..%2F..%2Fetc%2Fpasswd",
    ):
        status, body = raw_get(site, path, cookie)
        assert status in (400, 404), path
        assert b"[storage]" not in body and b"root:" not in body, path


def raw_get(site: Site, path: str, cookie: str) -> tuple[int, bytes]:
    """GET the path exactly as written (a client library would resolve its dot segments first)."""
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.putheader("Cookie", cookie)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_metrics_are_open_on_loopback_and_need_a_login_from_elsewhere(site: Site) -> None:
    local = requests.get(f"{site.url}/metrics", timeout=30)
    remote = requests.get(f"{site.url}/metrics", headers={"X-Forwarded-For": "203.0.113.99"}, timeout=30)
    staff = logged_in(site, STAFF)
    remote_logged_in = staff.get(f"{site.url}/metrics", headers={"X-Forwarded-For": "203.0.113.99"}, timeout=30)

    assert local.status_code == 200 and local.headers["Content-Type"].startswith("text/plain")
    assert 'shenbao_messages{verdict="accepted"} 1.0' in local.text
    assert 'shenbao_messages{verdict="review"} 1.0' in local.text
    assert 'shenbao_outbox{state="queued"}' in local.text and "shenbao_open_alerts 0.0" in local.text
    assert remote.status_code == 401
    assert remote_logged_in.status_code == 200


def test_a_removed_users_session_ends_at_once(site: Site) -> None:
    site.add_user("temporary", "staff")
    temporary = logged_in(site, "temporary")
    assert temporary.get(f"{site.url}/", allow_redirects=False, timeout=30).status_code == 200

    site.shenbao("user", "remove", "temporary")

    assert temporary.get(f"{site.url}/", allow_redirects=False, timeout=30).status_code == 302


def test_an_admin_reads_the_whole_audit_log(site: Site) -> None:
    admin = logged_in(site, ADMIN)

    page = admin.get(f"{site.url}/audit", timeout=30)

    assert page.status_code == 200
    assert all(name in page.text for name in (STAFF, VIEWER, ADMIN)) and "登录" in page.text


def test_the_export_tree_downloads_as_a_zip_whose_manifest_holds(site: Site) -> None:
    staff = logged_in(site, STAFF)

    answer = staff.get(f"{site.url}/downloads/export.zip", timeout=120)

    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    names = bundle.namelist()
    manifest = bundle.read("manifest.sha256").decode().splitlines()
    assert "汇总表.xlsx" in names
    assert any(name.endswith(f"/{JINAN}/申报书.docx") for name in names)
    for line in manifest:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(bundle.read(name)).hexdigest() == digest, name
