"""Large-attachment download links: how files over a provider's limit (about 50 MB) really arrive.

Only URLs count: 163 webmail puts CSS such as `#divNeteaseBigAttach` into every message, which is no link.
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?i:https?)://[^\s\"'<>()\[\]{}\x80-\U0010ffff]+")  # no IGNORECASE: 'i' would match 'İ'

_DOWNLOAD_PATTERNS = re.compile(
    r"ftnExs_download|/ftn/download|ftn\.qq\.com|wx\.mail\.qq\.com/ftn"  # QQ 超大附件
    r"|large-attachment-download|NETEASE-HUGE-ATTACHMENT|fs\.163\.com|cloud-attachment-download"  # NetEase
    r"|mail\.sina\.com\.cn/filecenter|mail\.sohu\.com/.*download"
    r"|pan\.baidu\.com/s/|yun\.baidu\.com/s/|share\.weiyun\.com|aliyundrive\.com/s/|alipan\.com/s/"
    r"|cloud\.189\.cn/t/|caiyun\.139\.com|yun\.139\.com|115\.com/s/|lanzou[a-z]*\.com|wenshushu\.cn"
    r"|jianguoyun\.com/p/|feishu\.cn/file|drive\.google\.com|1drv\.ms|onedrive\.live\.com"
    r"|sharepoint\.com|dropbox\.com/s",
    re.IGNORECASE,
)


def download_links(text: str) -> list[str]:
    """The distinct download links in a body (plain text or HTML), in order of appearance."""
    found: dict[str, None] = {}
    for match in _URL.finditer(text.replace("&amp;", "&")):
        url = match.group(0).rstrip(".,;:!?")
        if _DOWNLOAD_PATTERNS.search(url):
            found.setdefault(url)
    return list(found)
