"""The web console as staff use it, in Debian's headless Chromium (Selenium, no browser download), against
`shenbao web` started on a free loopback port over a database filled through the real recorder, with an
aiosmtpd capture as the SMTP server (issue 12, "Done when").

The tests share one site and one browser: counts, search, the review queue (accept with a note, a bureau
confirmed), an archive uploaded for a link message, the workbook. Each acts on messages of its own and logs
in when the browser is not, so that any one runs alone (`-k`) or in any order. Pictures of 总览, an
enterprise page and 待人工 are taken on the way; with SHENBAO_PICTURES=docs they replace docs/web-*.png
(otherwise they go to the test's temporary folder).
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RAR
from openpyxl import load_workbook
from web_support import (
    CHROMEDRIVER,
    CHROMIUM,
    CONTACT,
    DIRECT_SENDER,
    LINYI,
    PASSWORD,
    QINGDAO,
    Site,
    WebServer,
    chromium,
    downloaded,
    full_page_picture,
    make_site,
    standings_of,
)

from daemon.demo.servers import SmtpCapture

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (scripts/dev test installs them)",
)

STAFF = "zhangsan"
DIRECT_SENDER_ADDRESS = "zlb@luyue-zb.com.cn"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture() as server:
        yield server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpCapture) -> Iterator[Site]:
    made = make_site(tmp_path_factory.mktemp("web") / "site", smtp.port, bureaus=True)
    made.add_user(STAFF, "staff")
    with WebServer(made):
        yield made


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SHENBAO_PICTURES")
    return Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("pictures")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, downloads: Path, site: Site) -> Iterator[Any]:
    started = chromium(tmp_path_factory.mktemp("chromium") / "profile", downloads)
    try:
        yield started
    finally:
        started.quit()


@pytest.fixture
def browser(driver: Any, site: Site) -> Any:
    """The browser, logged in as staff."""
    driver.get(site.url + "/")
    if "/login" in driver.current_url:
        log_in(driver)
    return driver


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def submit(driver: Any, button: Any) -> None:
    """Press a form's button and wait for the page it leads to."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = by_css(driver, "html")

    def gone(_driver: Any) -> bool:
        """The old page is replaced; ChromeDriver says so in two ways, the second while it is being torn down."""
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error.msg):
                return True
            raise
        return False

    button.click()
    WebDriverWait(driver, 60).until(gone)


def log_in(driver: Any) -> None:
    """On the login page: the staff member's name and password, and the page it leads to."""
    by_css(driver, "input[name=name]").send_keys(STAFF)
    by_css(driver, "input[name=password]").send_keys(PASSWORD)
    submit(driver, by_css(driver, "form.login button"))


def flash(driver: Any) -> str:
    return " ".join(element.text for element in all_css(driver, ".flash"))


def received(smtp: SmtpCapture, recipient: str) -> list[email.message.EmailMessage]:
    found = []
    for captured in smtp.messages:
        if recipient in captured.rcpt_tos:
            parsed = email.message_from_bytes(captured.data, policy=email.policy.default)
            assert isinstance(parsed, email.message.EmailMessage)
            found.append(parsed)
    return found


def test_login_then_the_overview_shows_the_same_counts_as_status_json(driver: Any, site: Site, pictures: Path) -> None:
    browser = driver
    browser.delete_all_cookies()  # logged out, whatever ran before
    browser.get(site.url + "/")
    assert "/login" in browser.current_url
    log_in(browser)

    tiles = {
        tile.text.split("\n")[1]: int(tile.text.split("\n")[0])
        for tile in all_css(browser, ".tiles a.tile[class*=' s-']")
    }
    expected = standings_of(site.status())
    assert {word: count for word, count in tiles.items() if count} == expected
    assert sum(tiles.values()) == len(site.status())
    assert "2022年全省质量标杆" in browser.page_source and "各市报送" in browser.page_source
    assert "还剩 12 天" in by_css(browser, ".deadlines").text
    full_page_picture(browser, pictures / "web-overview.png")


def test_an_enterprise_is_found_by_the_sb_number_of_its_message(browser: Any, site: Site) -> None:
    browser.get(site.url + "/enterprises")
    by_css(browser, "input[name=q]").send_keys("SB-000003")
    submit(browser, by_css(browser, "form.filters button"))

    rows = all_css(browser, "table.list tbody tr")
    assert [row.find_element("css selector", "td:nth-child(2)").text for row in rows] == [LINYI]
    submit(browser, rows[0].find_element("link text", LINYI))
    page = by_css(browser, "main").text
    assert "SB-000003" in page and "缺少材料：证明材料" in page and "已退回" in page


def test_a_review_message_accepted_with_a_note_answers_the_enterprise_and_is_in_its_audit_log(
    browser: Any, site: Site, smtp: SmtpCapture, pictures: Path
) -> None:
    note = "已核实为省属企业，材料齐全，同意受理"
    browser.get(site.url + "/review")
    full_page_picture(browser, pictures / "web-review.png")
    card = by_css(browser, "article#SB-000010")
    assert DIRECT_SENDER in card.text and "企业不在推荐名单中" in card.text

    card.find_element("css selector", "form.decide input[value=accept]").click()
    card.find_element("css selector", "form.decide textarea[name=note]").send_keys(note)
    submit(browser, card.find_element("css selector", "form.decide button"))

    assert f"受理回执发往 {DIRECT_SENDER_ADDRESS}：已发送" in flash(browser)
    smtp.wait_for(1)
    [receipt] = received(smtp, DIRECT_SENDER_ADDRESS)
    assert str(receipt["Subject"]) == f"【受理回执】{DIRECT_SENDER}"
    body = receipt.get_body(("plain",))
    assert body is not None and note in str(body.get_content())
    browser.get(site.url + "/enterprises?q=" + DIRECT_SENDER)
    submit(browser, by_css(browser, "table.list").find_element("link text", DIRECT_SENDER))
    audit = by_css(browser, "table.audit").text
    assert STAFF in audit and "人工受理" in audit and note in audit
    assert "已受理" in by_css(browser, "section.facts").text


def test_a_bureau_email_from_an_unlisted_address_is_confirmed_for_its_city(browser: Any, site: Site) -> None:
    browser.get(site.url + "/messages/9")
    form = by_css(browser, "form.decide")
    assert "确认为市局报送" in form.text
    form.find_element("css selector", "select[name=city] option[value='济宁']").click()
    form.find_element("css selector", "textarea[name=note]").send_keys("已电话核实为济宁市工信局邮箱")
    submit(browser, form.find_element("css selector", "button"))

    assert "已确认为济宁市工业和信息化局报送" in flash(browser)
    card = by_css(browser, "article#SB-000009")
    assert card.find_element("css selector", "header .kind").text.startswith("市局报送 · 济宁")
    assert "济宁邹城煤矿机械有限公司" in card.text and "已电话核实为济宁市工信局邮箱" in card.text


def test_an_archive_uploaded_for_a_link_message_is_judged_and_the_new_verdict_shows(
    browser: Any, site: Site, smtp: SmtpCapture, tmp_path: Path, pictures: Path
) -> None:
    archive = tmp_path / f"{QINGDAO}.rar"
    shutil.copyfile(RAR / "valid.rar", archive)
    browser.get(site.url + "/review")
    card = by_css(browser, "article#SB-000002")
    assert "超大附件" in card.text

    card.find_element("css selector", "form.attach input[type=file]").send_keys(str(archive))
    submit(browser, card.find_element("css selector", "form.attach button"))

    assert "SB-000002：已添加" in flash(browser) and "结论：已受理" in flash(browser)
    assert by_css(browser, "article#SB-000002 header .badge").text == "已受理"
    assert "申报书.docx" in by_css(browser, "article#SB-000002").text
    wait = smtp.wait_for(len(smtp.messages))
    assert wait
    [receipt] = received(smtp, CONTACT[QINGDAO])
    assert str(receipt["Subject"]) == f"【受理回执】{QINGDAO}"
    submit(browser, by_css(browser, "article#SB-000002 .package h4 a"))
    assert QINGDAO in by_css(browser, "h1").text and "添加下载的压缩包" in by_css(browser, "table.audit").text
    full_page_picture(browser, pictures / "web-enterprise.png")


def test_the_workbook_downloads_and_opens_with_openpyxl(browser: Any, site: Site, downloads: Path) -> None:
    browser.get(site.url + "/downloads")
    by_css(browser, "a[href='/downloads/workbook']").click()

    book = load_workbook(downloaded(downloads, ".xlsx"))
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    names = [row[header.index("企业名称")] for row in rows[1:]]
    standing = {row[header.index("企业名称")]: row[header.index("状态")] for row in rows[1:]}
    expected = {row["enterprise"]: row["standing"] for row in site.status() if row["call"] == "province"}
    assert set(names) == set(expected)
    assert standing == expected
