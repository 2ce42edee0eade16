"""What each problem means and what to do about it, in the words the office uses with enterprises.

The one place for the Chinese wording of every code: replies, the digest and the command line read it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from .campaign import MIB, CallRules, Role
from .domain import Code, Outcome, Problem

SHANGHAI = ZoneInfo("Asia/Shanghai")

OUTCOME_WORDS = {
    Outcome.ACCEPTED: "已受理",
    Outcome.REJECTED: "已退回",
    Outcome.REVIEW: "待人工",
    Outcome.IGNORED: "已忽略",
}

TITLES = {
    Code.BOUNCE: "系统退信",
    Code.AUTO_REPLY: "自动回复",
    Code.BULK: "群发邮件",
    Code.UNREADABLE_MESSAGE: "邮件无法解析",
    Code.NOT_A_SUBMISSION: "不是申报邮件",
    Code.REVIEW_SENDER: "来自需人工处理的发件人",
    Code.UNKNOWN_ENTERPRISE: "邮件主题不是名单中的企业全称",
    Code.LATE: "超过截止时间",
    Code.NO_ATTACHMENT: "没有附件",
    Code.ATTACHMENT_LINK: "附件为下载链接（超大附件）",
    Code.NOT_RAR: "附件不是 RAR 压缩包",
    Code.TOO_LARGE: "超过大小限制",
    Code.ENCRYPTED_ARCHIVE: "压缩包设有密码",
    Code.INCOMPLETE_ARCHIVE: "分卷压缩包不完整",
    Code.CORRUPT_ARCHIVE: "压缩包已损坏",
    Code.UNSAFE_ARCHIVE: "压缩包需人工检查",
    Code.ARCHIVE_NAME_MISMATCH: "压缩包名称不是企业全称",
    Code.DUPLICATE_MEMBER: "压缩包中有同名文件",
    Code.MISSING_DOCUMENT: "缺少材料",
    Code.NOT_WORD_DOCUMENT: "材料不是 Word 格式",
    Code.INVALID_DOCUMENT: "材料不是有效的 Word 文档",
}


REVIEW_REASONS = {
    Code.ATTACHMENT_LINK: "您的材料以下载链接（超大附件）方式提供，需由工作人员下载后核验。",
    Code.UNSAFE_ARCHIVE: "您的压缩包需由工作人员人工检查。",
    Code.NOT_A_SUBMISSION: "该邮件不是申报材料，已转工作人员阅处。",
    Code.REVIEW_SENDER: "",
}


def review_reason(problems: tuple[Problem, ...]) -> str:
    return "".join(dict.fromkeys(REVIEW_REASONS.get(p.code, "") for p in problems))


def shanghai_time(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")


def megabytes(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def role_of(code: str | None, rules: CallRules) -> Role | None:
    return next((role for role in rules.roles if role.code == code), None)


def title(problem: Problem, rules: CallRules) -> str:
    """A one-line Chinese title, naming the document for the per-document codes."""
    role = role_of(problem.role, rules)
    return f"{TITLES[problem.code]}：{role.label}" if role else TITLES[problem.code]


def titles(problems: Iterable[Problem], rules: CallRules) -> str:
    return "；".join(title(p, rules) for p in problems)


def advice(problem: Problem, rules: CallRules) -> str:
    """What was found and what to do, quoting the rule of the notice."""
    detail = problem.detail or ""
    role = role_of(problem.role, rules)
    label = role.label if role else ""
    formats = "、".join(f".{f}" for f in role.formats) if role else ""
    match problem.code:
        case Code.UNKNOWN_ENTERPRISE:
            hint = f"请确认是否为“{problem.suggestion}”。" if problem.suggestion else ""
            return (
                "通知要求邮件主题为申报企业全称（与推荐汇总表一致），您的邮件主题与名单中的企业名称不一致。"
                f"{hint}请以企业全称作为邮件主题重新发送。"
            )
        case Code.LATE:
            deadline = f"为 {shanghai_time(rules.deadline)}，" if rules.deadline else ""
            received = f"您的邮件于 {shanghai_time(datetime.fromisoformat(detail))} 收到，" if detail else ""
            return f"本次申报截止时间{deadline}{received}已超过截止时间。如有特殊情况，请与我处电话联系。"
        case Code.NO_ATTACHMENT:
            return "邮件中没有附件。请将申报材料压缩为一个 RAR 压缩包，作为附件重新发送。"
        case Code.NOT_RAR:
            return (
                f"通知要求附件为 RAR 格式的压缩包，收到的附件（{detail}）不是 RAR 压缩包。"
                "请用 WinRAR 等软件压缩为 .rar 格式后重新发送（ZIP、7z 等格式不予受理）。"
            )
        case Code.TOO_LARGE:
            size = f"（收到 {megabytes(int(detail))}）" if detail.isdigit() else ""
            return f"通知要求压缩包不超过 {rules.max_archive_bytes / MIB:g} MB{size}。请压缩图片、精简材料后重新发送。"
        case Code.ENCRYPTED_ARCHIVE:
            return "压缩包设有密码，评审时无法打开。请去掉密码重新压缩后发送。"
        case Code.INCOMPLETE_ARCHIVE:
            missing = f"（缺少：{detail}）" if detail else ""
            return f"分卷压缩包不完整{missing}。请将全部分卷一并发送，或压缩为单个 RAR 文件后发送。"
        case Code.CORRUPT_ARCHIVE:
            return "压缩包已损坏，无法完整解压。请重新压缩，确认能正常打开后再发送。"
        case Code.ARCHIVE_NAME_MISMATCH:
            return (
                f"通知要求压缩包以申报企业全称命名，应为“{problem.suggestion}”，"
                f"收到的压缩包名为“{detail}”。请改名后重新发送。"
            )
        case Code.DUPLICATE_MEMBER:
            return (
                f"压缩包中有多个同名文件（{detail}），解压时会互相覆盖，评审时只能看到其中一个。"
                "请删除或改名重复的文件，重新压缩后发送。"
            )
        case Code.MISSING_DOCUMENT:
            keywords = "”或“".join(role.keywords) if role else ""
            return f"压缩包中没有找到{label}。请将{label}（Word 格式，文件名中含“{keywords}”）放入压缩包后重新发送。"
        case Code.NOT_WORD_DOCUMENT:
            return f"通知要求{label}为 Word 格式（{formats}），收到的是：{detail}。请转换为 Word 格式后重新发送。"
        case Code.INVALID_DOCUMENT:
            return f"{label}无法作为 Word 文档打开（{detail}）。请用 Word 或 WPS 另存为 .docx 后重新压缩发送。"
        case Code.UNREADABLE_MESSAGE:
            return "您的邮件无法解析，可能在传输中损坏。请重新发送。"
        case _:
            return TITLES[problem.code]
