"""What each problem means, in the words the office uses with enterprises.

One place for the Chinese wording of every code: replies, the digest and the command line all read it here.
"""

from __future__ import annotations

from .campaign import CallRules
from .domain import Code, Outcome, Problem

OUTCOME_WORDS = {
    Outcome.ACCEPTED: "已受理",
    Outcome.REJECTED: "已退回",
    Outcome.REVIEW: "待人工审核",
    Outcome.IGNORED: "已忽略",
}

TITLES = {
    Code.BOUNCE: "系统退信",
    Code.AUTO_REPLY: "自动回复",
    Code.BULK: "群发邮件",
    Code.UNREADABLE_MESSAGE: "邮件无法解析",
    Code.NOT_A_SUBMISSION: "不是申报邮件",
    Code.UNKNOWN_ENTERPRISE: "邮件主题不是名单中的企业全称",
    Code.LATE: "超过截止时间",
    Code.NO_ATTACHMENT: "没有附件",
    Code.ATTACHMENT_LINK: "附件为下载链接（超大附件）",
    Code.NOT_RAR: "附件不是 RAR 压缩包",
    Code.TOO_LARGE: "压缩包超过大小限制",
    Code.ENCRYPTED_ARCHIVE: "压缩包设有密码",
    Code.INCOMPLETE_ARCHIVE: "分卷压缩包不完整",
    Code.CORRUPT_ARCHIVE: "压缩包已损坏",
    Code.UNSAFE_ARCHIVE: "压缩包需人工检查",
    Code.ARCHIVE_NAME_MISMATCH: "压缩包名称不是企业全称",
    Code.MISSING_DOCUMENT: "缺少材料",
    Code.NOT_WORD_DOCUMENT: "材料不是 Word 格式",
    Code.INVALID_DOCUMENT: "材料不是有效的 Word 文档",
}


def role_label(role: str | None, rules: CallRules) -> str:
    for candidate in rules.roles:
        if candidate.code == role:
            return candidate.label
    return role or ""


def title(problem: Problem, rules: CallRules) -> str:
    """A one-line Chinese title, naming the document for the per-document codes."""
    if problem.role:
        return f"{TITLES[problem.code]}：{role_label(problem.role, rules)}"
    return TITLES[problem.code]
