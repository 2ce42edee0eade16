"""Large-attachment download links in a message body (daemon/intake/links.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from daemon.domain import ParsedMessage
from daemon.intake.links import download_links
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
