"""Large-attachment download links: how files over a provider's limit (about 50 MB) really arrive.

Only URLs count: 163 webmail puts CSS such as `#divNeteaseBigAttach` into every message, which is no link.
The body is untrusted text of any length, so the work is linear in it: one pass of a pattern without
alternatives finds URL candidates, each is judged by plain substring checks and `urlsplit` (a pattern such as
`mail\\.sohu\\.com/.*download` backtracked quadratically: 389 s for one 1.4 MB URL), and only the first
`MAX_SCAN_CHARS` of the body and URLs up to `MAX_URL_CHARS` are looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_SCAN_CHARS = 2 << 20
"""A text part and its HTML alternative as parse.py keeps them (1 Mi characters each)."""
MAX_URL_CHARS = 4096
"""Longer is no link a provider makes (theirs are well under 1 KB)."""
MAX_LINKS = 20
"""A message naming more download links is not a submission by link; twenty are plenty to show staff."""

_URL = re.compile(r"(?i:https?)://[^\s\"'<>()\[\]{}\x80-\U0010ffff]+")  # no IGNORECASE: 'i' would match 'İ'

_MARKERS = (
    "ftnexs_download",  # QQ 超大附件: mail.qq.com/cgi-bin/ftnExs_download
    "/ftn/download",
    "large-attachment-download",  # NetEase
    "netease-huge-attachment",
    "cloud-attachment-download",
)
"""Found anywhere in a URL, in lower case: names only these providers' download pages use."""


@dataclass(frozen=True)
class _Site:
    """A file-sharing host (or any subdomain of it) and what a download page's path starts with or holds."""

    domain: str
    path: str = ""
    contains: str = ""


_SITES = (
    _Site("ftn.qq.com"),
    _Site("wx.mail.qq.com", "/ftn"),
    _Site("fs.163.com"),
    _Site("mail.sina.com.cn", "/filecenter"),
    _Site("mail.sohu.com", contains="download"),
    _Site("pan.baidu.com", "/s/"),
    _Site("yun.baidu.com", "/s/"),
    _Site("share.weiyun.com"),
    _Site("aliyundrive.com", "/s/"),
    _Site("alipan.com", "/s/"),
    _Site("cloud.189.cn", "/t/"),
    _Site("caiyun.139.com"),
    _Site("yun.139.com"),
    _Site("115.com", "/s/"),
    _Site("wenshushu.cn"),
    _Site("jianguoyun.com", "/p/"),
    _Site("feishu.cn", "/file"),
    _Site("drive.google.com"),
    _Site("1drv.ms"),
    _Site("onedrive.live.com"),
    _Site("sharepoint.com"),
    _Site("dropbox.com", "/s"),
)
_LANZOU = re.compile(r"lanzou[a-z]*")
"""蓝奏云 changes its second-level name often: lanzoux.com, lanzoui.com, ..."""


def download_links(text: str) -> list[str]:
    """The distinct download links in a body (plain text or HTML), in order of appearance."""
    found: dict[str, None] = {}
    for match in _URL.finditer(text[:MAX_SCAN_CHARS].replace("&amp;", "&")):
        url = match.group(0).rstrip(".,;:!?")
        if is_download_link(url):
            found.setdefault(url)
            if len(found) == MAX_LINKS:
                break
    return list(found)


def is_download_link(url: str) -> bool:
    """Whether one URL (at most MAX_URL_CHARS long) is a provider's large-attachment or a share link."""
    if len(url) > MAX_URL_CHARS:
        return False
    lowered = url.lower()
    if any(marker in lowered for marker in _MARKERS):
        return True
    try:
        parts = urlsplit(lowered)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # e.g. a port that is no number
        return False
    after_host = f"{parts.path}?{parts.query}#{parts.fragment}"
    for site in _SITES:
        if (host == site.domain or host.endswith("." + site.domain)) and parts.path.startswith(site.path):
            return site.contains in after_host
    labels = host.split(".")
    return len(labels) >= 2 and labels[-1] == "com" and _LANZOU.fullmatch(labels[-2]) is not None
