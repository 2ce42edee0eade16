"""The web console under test: a site (config, roster, a database filled through the real recorder), the
console started as `shenbao web` in its own process on a free loopback port, users added with
`shenbao user add --password-stdin`, and Debian's headless Chromium driven by Selenium (no browser download).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from conftest import FIXTURES, ROSTER_ROWS, rar, submission, valid_submission, write_roster

from daemon.config import load
from daemon.demo.servers import Started, free_port, port_accepts, wait_until
from daemon.service.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SMTP_PASSWORD_ENV = "SHENBAO_WEB_TEST_SMTP_PASSWORD"
SECRET_ENV = "SHENBAO_WEB_TEST_SECRET"
MAILBOX = "kejichu2019@shandong.cn"
LINK = "https://mail.qq.com/cgi-bin/ftnExs_download?k=1&t=exs_ftn_download&code=2"
PASSWORD = "correct horse battery"

JINAN, QINGDAO, LINYI = (row[1] for row in ROSTER_ROWS)
QUANCHENG = "济南泉城智能装备有限公司"
ROWS = [ROSTER_ROWS[0], ("济南", QUANCHENG, "智能装备全过程质量追溯", "孙工", "13863100008", ""), *ROSTER_ROWS[1:]]
CONTACT = {row[1]: row[5] for row in ROWS}
BUREAU_MESSAGES = (
    "01-three-emails-1-letter-table",
    "02-three-emails-2-archives",
    "03-three-emails-3-archives",
    "04-outer-rar",
    "08-missing-letter",
    "10-unlisted-bureau-sender",
    "11-direct-sender",
    "15-download-link",
)
DIRECT_SENDER = "山东鲁岳高端装备集团有限公司"
"""The 省属 enterprise of 11-direct-sender.eml: in no roster or table, so a person decides."""


def config_text(port: int, smtp_port: int | None, *, bureaus: bool, deadline: datetime, web: str = "") -> str:
    calls = (
        f"""
[[campaign.calls]]
code = "province"
name = "2022年全省质量标杆"
table = "附件3"
deadline = "{deadline.isoformat()}"
bureau_deadline = "{(deadline - timedelta(days=9)).isoformat()}"

[[campaign.calls]]
code = "national"
name = "2022年全国质量标杆"
table = "附件6"
max_per_city = 2
bureau_deadline = "{(deadline - timedelta(days=9)).isoformat()}"

{(FIXTURES / "bureaus" / "config-bureaus.toml").read_text(encoding="utf-8")}
"""
        if bureaus
        else f'deadline = "{deadline.isoformat()}"\n'
    )
    smtp = (
        f"""
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
username = "{MAILBOX}"
password_env = "{SMTP_PASSWORD_ENV}"
sender = "山东省工业和信息化厅科技处 <{MAILBOX}>"
"""
        if smtp_port
        else ""
    )
    return f"""\
[storage]
database = "sqlite:///var/shenbao.db"
files = "var/files"

[web]
listen = "127.0.0.1:{port}"
secret_env = "{SECRET_ENV}"
{web}
{smtp}
[office]
name = "山东省工业和信息化厅科技处"

[campaign]
name = "2022年质量标杆"
roster = "roster.xlsx"
{calls}"""


@dataclass(frozen=True)
class Site:
    folder: Path
    port: int

    @property
    def config(self) -> Path:
        return self.folder / "shenbao.toml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def runtime(self) -> Runtime:
        return Runtime.open(load(self.config))

    def shenbao(self, *args: str, stdin: str | None = None) -> str:
        """`python -m daemon ARGS --config F`; its output (it must succeed)."""
        result = subprocess.run(
            [sys.executable, "-m", "daemon", *args, "--config", str(self.config)],
            input=stdin,
            capture_output=True,
            text=True,
            env=_environment(),
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"shenbao {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
        return result.stdout

    def add_user(self, name: str, role: str, password: str = PASSWORD) -> None:
        self.shenbao("user", "add", name, "--role", role, "--password-stdin", stdin=password + "\n")

    def status(self) -> list[dict[str, Any]]:
        """`shenbao status --json`: one JSON object per line, one per listed enterprise."""
        return [json.loads(line) for line in self.shenbao("status", "--json").splitlines()]


def make_site(folder: Path, smtp_port: int | None, *, bureaus: bool, web: str = "") -> Site:
    """A site whose database holds, through the real recorder: SB-000001 济南明湖 accepted, SB-000002 青岛
    a 超大附件 link (review), SB-000003 临沂 without proof (rejected); with `bureaus`, the bureaus' emails
    of BUREAU_MESSAGES after them (SB-000004 on). 济南泉城 sends nothing. `web`: more [web] settings."""
    folder.mkdir(parents=True)
    port = free_port()
    deadline = (datetime.now(UTC) + timedelta(days=12, hours=5)).replace(microsecond=0)
    (folder / "shenbao.toml").write_text(
        config_text(port, smtp_port, bureaus=bureaus, deadline=deadline, web=web), "utf-8"
    )
    write_roster(folder / "roster.xlsx", ROWS)
    site = Site(folder, port)
    recorder = site.runtime().recorder()
    messages: list[tuple[str, bytes]] = [
        ("1-jinan.eml", valid_submission()),
        (
            "2-qingdao-link.eml",
            submission(QINGDAO, sender=CONTACT[QINGDAO], body=f"材料较大，已用超大附件发送：{LINK}"),
        ),
        ("3-linyi.eml", submission(LINYI, [(f"{LINYI}.rar", rar("missing_proof.rar"))], sender=CONTACT[LINYI])),
    ]
    if bureaus:
        messages += [
            (name, (FIXTURES / "bureaus" / "messages" / f"{name}.eml").read_bytes()) for name in BUREAU_MESSAGES
        ]
    for source, raw in messages:
        recorder.record(raw, source)
    return site


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env[SMTP_PASSWORD_ENV] = ""
    env[SECRET_ENV] = "a test key that signs the session cookies"
    return env


class WebServer(Started):
    """`shenbao web --config F` in its own process, until stopped."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.process: subprocess.Popen[bytes] | None = None
        self.log = site.folder / "web.log"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "web", "--config", str(self.site.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_environment(),
            )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"shenbao web exited {self.process.returncode}:\n{self.log.read_text()}")
            return port_accepts("127.0.0.1", self.site.port)

        wait_until(up, 60, f"shenbao web on port {self.site.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


# -- HTTP --------------------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def logged_in(site: Site, name: str, password: str = PASSWORD) -> requests.Session:
    """An HTTP session logged in as `name`."""
    http = requests.Session()
    form = http.get(f"{site.url}/login", timeout=30)
    answer = http.post(
        f"{site.url}/login",
        data={"csrf": csrf_of(form.text), "name": name, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    return http


# -- the browser -------------------------------------------------------------------------------------------


def chromium(profile: Path, downloads: Path) -> Any:
    """Debian's Chromium, headless, through its chromedriver: Selenium is told both paths, so it fetches
    nothing. A fresh profile each time, downloads into `downloads` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=zh-CN",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def full_page_picture(driver: Any, path: Path) -> None:
    """The whole page, not only the window (Chromium's DevTools protocol captures beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def downloaded(folder: Path, suffix: str, timeout: float = 30) -> Path:
    """The file a download put into `folder`, once complete."""
    found: list[Path] = []

    def done() -> bool:
        found[:] = [p for p in folder.glob(f"*{suffix}") if p.stat().st_size > 0]
        return bool(found) and not list(folder.glob("*.crdownload"))

    wait_until(done, timeout, f"a {suffix} download in {folder}")
    return found[0]


def standings_of(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["standing"]] = counts.get(row["standing"], 0) + 1
    return counts
