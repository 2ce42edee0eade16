"""Large-attachment download links in a message body (daemon/intake/links.py)."""

from __future__ import annotations

import base64
import timeit
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.domain import ParsedMessage
from daemon.intake.links import MAX_LINKS, MAX_SCAN_CHARS, MAX_URL_CHARS, download_links
from daemon.intake.parse import parse_message

QQ = "https://mail.qq.com/cgi-bin/ftnExs_download?k=2a6d3b5f1c&t=exs_ftn_download&code=7f3e"
NETEASE = "https://mail.163.com/large-attachment-download/index.html?p=X-NETEASE-HUGE-ATTACHMENT&file=abc123"
BAIDU = "https://pan.baidu.com/s/1AbCdEfGhIjKlMnOp"


def test_qq_ftnexs_download_link_in_plain_text() -> None:
    text = f"您好，附件过大，已用超大附件发送：\n{QQ}\n请在30天内下载。"
    assert download_links(text) == [QQ]


def test_163_large_attachment_download_link_in_plain_text() -> None:
    text = f"从网易163邮箱发来的超大附件\n申报材料.rar (180M, 2022年7月28日 10:00 到期)\n下载: {NETEASE}"
    assert download_links(text) == [NETEASE]


def test_baidu_pan_share_link_with_extraction_code() -> None:
    text = f"链接: {BAIDU} 提取码: ab12 复制这段内容后打开百度网盘手机App，操作更方便哦"
    assert download_links(text) == [BAIDU]


def test_link_in_html_has_its_ampersand_entities_decoded() -> None:
    html = QQ.replace("&", "&amp;")
    body = f'<div><a href="{html}" target="_blank">申报材料.rar</a></div>'
    assert download_links(body) == [QQ]


def test_163_link_in_html_with_amp_entities() -> None:
    body = f"<a href='{NETEASE.replace('&', '&amp;')}'>下载</a>"
    assert download_links(body) == [NETEASE]


def test_same_link_twice_is_reported_once() -> None:
    body = f'<a href="{QQ.replace("&", "&amp;")}">{QQ}</a>\n{QQ}'
    assert download_links(body) == [QQ]


def test_distinct_links_are_reported_in_order_of_appearance() -> None:
    assert download_links(f"{BAIDU}\n{QQ}") == [BAIDU, QQ]


def test_trailing_sentence_punctuation_is_not_part_of_the_link() -> None:
    assert download_links(f"请下载{BAIDU}。") == [BAIDU]
    assert download_links(f"see {BAIDU}.") == [BAIDU]


def test_link_followed_directly_by_chinese_text_ends_where_the_url_ends() -> None:
    assert download_links(f"链接：{BAIDU}，提取码：ab12") == [BAIDU]


def test_netease_css_rule_alone_is_not_a_link() -> None:
    body = (
        "<html><head><style>#divNeteaseBigAttach{display:none}"
        "#divNeteaseBigAttach .attach{color:#333}</style></head>"
        "<body><p>您好，附件为申报材料，请查收。</p></body></html>"
    )
    assert download_links(body) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://www.minghu-soft.cn/",
        "https://www.minghu-soft.cn/about/index.html?lang=zh",
        "http://gxt.shandong.gov.cn/art/2022/6/1/art_15181_10312345.html",
        "https://mail.qq.com/",
    ],
)
def test_ordinary_link_is_not_a_download_link(url: str) -> None:
    assert download_links(f"公司主页：{url} 欢迎访问") == []


def test_text_without_links_has_none() -> None:
    assert download_links("您好，附件为申报材料，请查收。") == []


def test_link_in_a_parsed_quoted_printable_html_body_is_found(workdir: Path) -> None:
    """What the intake really sees: an HTML part, quoted-printable, with &amp; in the href."""
    html = f'<p>超大附件：<a href=3D"{NETEASE.replace("&", "&amp;").replace("=", "=3D")}">下载</a></p>'
    raw = (
        b"From: ops@minghu-soft.cn\r\n"
        b"Subject: =?utf-8?B?" + base64.b64encode("申报材料".encode()) + b"?=\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n" + html.encode() + b"\r\n"
    )
    parsed = parse_message(raw, workdir)
    assert isinstance(parsed, ParsedMessage)
    assert parsed.attachments == ()
    assert download_links(parsed.body_text) == [NETEASE]


# -- ordinary links of each provider, and what only looks like one --------------------------------------------

SOHU = "https://mail.sohu.com/bapp/81/main#/bigattach/download?token=5a1c9e"
QQ_WX = "https://wx.mail.qq.com/ftn/download?func=3&key=9c1a"
NETEASE_FS = "https://fs.163.com/fs/display/?p=X-NETEASE-HUGE-ATTACHMENT&file=abc"
LANZOU = "https://wwi.lanzoux.com/iAbCd0e1f2g"


@pytest.mark.parametrize(
    "url", [QQ, QQ_WX, NETEASE, NETEASE_FS, SOHU, BAIDU, LANZOU, "https://www.dropbox.com/s/x/a.rar"]
)
def test_each_providers_download_link_is_found(url: str) -> None:
    assert download_links(f"材料较大，请从此处下载：{url}\n谢谢") == [url]


@pytest.mark.parametrize(
    "url",
    [
        "https://mail.sohu.com/fe/index.html",  # sohu webmail, no download
        "https://pan.baidu.com.example.net/s/1AbC",  # the provider's name as a subdomain of another host
        "https://notpan.baidu.com/s/1AbC",
        "https://pan.baidu.com/disk/home",
        "https://www.lanzou.cn/x",
    ],
)
def test_what_only_resembles_a_download_link_is_none(url: str) -> None:
    assert download_links(url) == []


def test_a_url_longer_than_the_cap_is_no_link_but_the_links_after_it_are_found() -> None:
    long = "https://mail.sohu.com/download/" + "a" * MAX_URL_CHARS
    assert download_links(f"{long}\n{SOHU}") == [SOHU]


def test_links_past_the_scanned_length_are_not_looked_at() -> None:
    assert download_links(" " * MAX_SCAN_CHARS + BAIDU) == []
    assert download_links(" " * (MAX_SCAN_CHARS - len(BAIDU)) + BAIDU) == [BAIDU]


def test_at_most_max_links_are_reported() -> None:
    body = " ".join(f"{BAIDU}{n}" for n in range(MAX_LINKS * 5))
    assert download_links(body) == [f"{BAIDU}{n}" for n in range(MAX_LINKS)]


# -- linear time on hostile bodies (issue 8, finding 4) ----------------------------------------------------------


def _sohu_repeated(size: int) -> str:
    """One URL under mail.sohu.com of `size` characters, every piece of it another `mail.sohu.com/`: the old
    pattern `mail\\.sohu\\.com/.*download` scanned to the end from each of them (389 s at 1.4 MB)."""
    return "https://mail.sohu.com/" + "mail.sohu.com/" * (size // 14)


HOSTILE_BODIES = {
    "one URL of repeated mail.sohu.com/": _sohu_repeated,
    "one URL under mail.sohu.com, no download": lambda size: "https://mail.sohu.com/" + "a" * size,
    "download everywhere but the host": lambda size: "https://x.cn/" + "download/" * (size // 9),
    "URL after URL, no space": lambda size: "http://" * (size // 7),
    "short distinct links": lambda size: " ".join(f"{SOHU}{n}" for n in range(size // (len(SOHU) + 8))),
    "&amp; entities": lambda size: "https://mail.sohu.com/?" + "&amp;" * (size // 5),
}


def _best_time(text: str) -> float:
    return min(timeit.repeat(lambda: download_links(text), number=1, repeat=5))


@pytest.mark.parametrize("make", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_hostile_body_is_judged_in_linear_time(make: Callable[[int], str]) -> None:
    """Not a timing test but a guard against quadratic behaviour: 14 times the text may take about 14 times
    as long (a quadratic pattern takes 196 times as long), and the 1.4 MB body well under a second."""
    small, large = make(100_000), make(1_400_000)

    small_time, large_time = _best_time(small), _best_time(large)

    assert large_time < 1.0
    assert large_time < 50 * max(small_time, 1e-4)


def test_a_1_4_mb_sohu_url_is_no_link_and_an_ordinary_link_after_it_is_found() -> None:
    body = f"{_sohu_repeated(1_400_000)}\n下载：{SOHU}\n{QQ}"
    assert download_links(body) == [SOHU, QQ]
