"""What each problem means and what to do about it, in the words the office uses with enterprises.

The one place for the Chinese wording of every code: replies, the digest and the command line read it here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .campaign import MIB, CallRules, Role
from .domain import Code, Contents, CopyKind, Outcome, Problem, SealStatus
from .intake.match import differences

SHANGHAI = ZoneInfo("Asia/Shanghai")

OUTCOME_WORDS = {
    Outcome.ACCEPTED: "已受理",
    Outcome.REJECTED: "已退回",
    Outcome.REVIEW: "待人工",
    Outcome.IGNORED: "已忽略",
    Outcome.PENDING: "待补齐",
    Outcome.BUREAU: "市局报送",
}


REPLY_WORDS = {
    "receipt": "受理回执",
    "rejection": "退回通知",
    "review": "收件通知",
    "volumes": "分卷收件通知",
    "bureau": "市局收件回执",
    "decision": "审核退回通知",
    "digest": "申报日报",
    "reminder": "截止提醒",
}

STATE_WORDS = {
    "queued": "待发送",
    "held": "暂缓发送",
    "sending": "发送中",
    "sent": "已发送",
    "failed": "发送失败",
    "suppressed": "已拦截（同一地址回复过多）",
    "uncertain": "不确定是否送达",
    "bounced": "被退信",
}


SEAL_WORDS = {
    SealStatus.FOUND: "已识别到公章",
    SealStatus.NOT_FOUND: "未识别到公章",
    SealStatus.UNREADABLE: "图片无法识别",
}


def reference(record_id: int) -> str:
    """The 登记编号 of a message, the one number every reply and staff view uses for it."""
    return f"SB-{record_id:06d}"


def human_size(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} 字节"


TITLES = {
    Code.BOUNCE: "系统退信",
    Code.AUTO_REPLY: "自动回复",
    Code.BULK: "群发邮件",
    Code.UNREADABLE_MESSAGE: "邮件无法解析",
    Code.JUDGING_TIMEOUT: "核验用时超出限制，已转人工",
    Code.NOT_A_SUBMISSION: "不是申报邮件",
    Code.REVIEW_SENDER: "来自需人工处理的发件人",
    Code.UNKNOWN_ENTERPRISE: "邮件主题不是名单中的企业全称",
    Code.DIRECT_SENDER: "企业不在推荐名单中，待人工确认",
    Code.LATE: "超过截止时间",
    Code.NO_ATTACHMENT: "没有附件",
    Code.ATTACHMENT_LINK: "附件为下载链接（超大附件）",
    Code.NOT_RAR: "附件不是 RAR 压缩包",
    Code.TOO_LARGE: "超过大小限制",
    Code.ENCRYPTED_ARCHIVE: "压缩包设有密码",
    Code.INCOMPLETE_ARCHIVE: "分卷压缩包不完整",
    Code.VOLUMES_PENDING: "分卷压缩包尚未到齐",
    Code.CORRUPT_ARCHIVE: "压缩包已损坏",
    Code.UNSAFE_ARCHIVE: "压缩包需人工检查",
    Code.ARCHIVE_NAME_MISMATCH: "压缩包名称不是企业全称",
    Code.DUPLICATE_MEMBER: "压缩包中有同名文件",
    Code.MISSING_DOCUMENT: "缺少材料",
    Code.NOT_WORD_DOCUMENT: "材料不是 Word 格式",
    Code.INVALID_DOCUMENT: "材料不是有效的 Word 文档",
    Code.UNREADABLE_DOCUMENT: "材料需人工查看",
    Code.FOREIGN_DOCUMENT: "申报书所填企业不是发件企业",
    Code.SEAL_NOT_FOUND: "未识别到申报书上的公章",
    Code.BUREAU_UNCONFIRMED: "发件地址不在各市工业和信息化局登记名单中",
    Code.UNKNOWN_CALL: "无法判断报送的是哪一项评选",
    Code.MISSING_LETTER: "缺少推荐文件",
    Code.INVALID_LETTER: "推荐文件无法打开",
    Code.MISSING_TABLE: "缺少汇总表",
    Code.INVALID_TABLE: "汇总表无法读取",
    Code.MISSING_ARCHIVE: "汇总表中的企业尚无申报材料",
    Code.UNLISTED_ARCHIVE: "压缩包对应的企业不在汇总表中",
    Code.NAME_NEAR_MISS: "压缩包名称与汇总表中的企业名称不一致",
    Code.TOO_MANY_NATIONAL: "推荐企业数量超过限额",
    Code.RECOMMENDED_TWICE: "该企业已由其他市推荐",
    Code.SUBJECT_NOT_EXACT: "邮件主题不是企业全称（已按企业全称受理）",
    Code.ARCHIVE_NAME_NOT_EXACT: "压缩包名称不是企业全称（已按企业全称受理）",
    Code.SAME_AS_ACCEPTED: "与已受理的材料相同",
    Code.FORM_NAMES_NOBODY: "申报书中未找到名单中的企业全称",
}


REVIEW_REASONS = {
    Code.ATTACHMENT_LINK: "贵单位的材料以下载链接（超大附件）方式提供，需由工作人员下载后核验，"
    "核验后将另行发送受理回执或退回通知。"
    "请确保下载链接在截止时间后仍然有效（超大附件一般有效期为 15 至 30 天，请勿删除）。",
    Code.UNSAFE_ARCHIVE: "贵单位的压缩包需由工作人员人工检查，检查后将另行通知结果。",
    Code.NOT_A_SUBMISSION: "您的来信已转交工作人员阅处，工作人员将尽快答复。",
    Code.REVIEW_SENDER: "",
    Code.DIRECT_SENDER: "贵单位不在各市推荐的企业名单中，材料已转工作人员确认，确认后将另行通知结果。",
    Code.BUREAU_UNCONFIRMED: "该发件地址尚未登记为市工业和信息化局的报送邮箱，材料已转工作人员确认，确认后将另行回复。",
    Code.UNKNOWN_CALL: "系统无法判断所报送的是全省还是全国质量标杆，已转工作人员确认。",
    Code.UNLISTED_ARCHIVE: "",
    Code.JUDGING_TIMEOUT: "贵单位的邮件内容较多，系统未能在规定时间内完成核验，已转工作人员人工核验，"
    "核验后将另行通知结果。",
    Code.UNREADABLE_DOCUMENT: "贵单位压缩包中的个别文档系统未能完成读取，已转工作人员人工查看，查看后将另行通知结果。",
    Code.FOREIGN_DOCUMENT: "贵单位申报书中填写的企业名称与邮件主题不一致，已转工作人员核对，核对后将另行通知结果。",
    Code.SEAL_NOT_FOUND: "系统未能在申报书中识别到公章印迹，已转工作人员人工确认，确认后将另行通知结果。",
}


def review_reason(problems: tuple[Problem, ...]) -> str:
    return "".join(dict.fromkeys(REVIEW_REASONS.get(p.code, "") for p in problems if not p.is_note))


def grouped(problems: Iterable[Problem]) -> list[Problem]:
    """Problems of one code and document role said once, their details joined (three .wps files: one item)."""
    merged: dict[tuple[Code, str | None, str | None], Problem] = {}
    for problem in problems:
        key = (problem.code, problem.role, problem.enterprise)
        if key in merged and problem.detail:
            earlier = merged[key]
            detail = "；".join(filter(None, (earlier.detail, problem.detail)))
            merged[key] = replace(earlier, detail=detail)
        else:
            merged.setdefault(key, problem)
    return list(merged.values())


def note_text(problem: Problem) -> str:
    """The polite word a receipt adds when the sender's mail was read leniently."""
    match problem.code:
        case Code.SUBJECT_NOT_EXACT:
            return (
                f"贵单位邮件的主题为“{problem.detail}”，已按企业全称“{problem.suggestion}”受理。"
                "今后报送时，请以企业全称作为邮件主题，不要添加其他文字。"
            )
        case Code.ARCHIVE_NAME_NOT_EXACT:
            return (
                f"压缩包名为“{problem.detail}.rar”，已按企业全称受理。"
                f"今后报送时，请将压缩包命名为“{problem.suggestion}.rar”。"
            )
        case Code.SEAL_NOT_FOUND:
            return (
                "通知要求申报书加盖公章，系统未能在申报书中识别到公章印迹（盖章页的扫描件或照片）。"
                "如申报书已盖章，请忽略本提示；如尚未盖章，请将盖章页扫描或拍照插入申报书，"
                "重新压缩后以相同主题再次发送，新材料将替代本次材料。"
            )
        case _:
            return TITLES[problem.code]


def volumes_text(problems: Iterable[Problem]) -> dict[str, str] | None:
    """For a set of volumes still coming: which arrived and which are awaited."""
    for problem in problems:
        if problem.code is Code.VOLUMES_PENDING:
            present, _, missing = (problem.detail or "").partition("|")
            return {"present": present, "missing": missing}
    return None


def today(moment: datetime | None = None) -> date:
    return (moment or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()


def days_left(deadline: datetime | None, day: date) -> int | None:
    return None if deadline is None else (deadline.astimezone(SHANGHAI).date() - day).days


def shanghai_time(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)  # formatted by hand: strftime took twice as long, a status's 5,000 times
    return f"{local.year}年{local.month:02d}月{local.day:02d}日 {local.hour:02d}:{local.minute:02d}"


def megabytes(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def role_of(code: str | None, rules: CallRules) -> Role | None:
    return next((role for role in rules.roles if role.code == code), None)


def title(problem: Problem, rules: CallRules) -> str:
    """A one-line Chinese title, naming the document for the per-document codes."""
    role = role_of(problem.role, rules)
    return f"{TITLES[problem.code]}：{role.label}" if role else TITLES[problem.code]


def titles(problems: Collection[Problem], rules: CallRules) -> str:
    """One line of problem titles; a title said of several enterprises or files is said once, counted."""
    if not problems:  # most of a status's rows: accepted, or nothing sent
        return ""
    counted = Counter(title(p, rules) for p in problems)
    return "；".join(f"{said}（{n} 项）" if n > 1 else said for said, n in counted.items())


def advice(problem: Problem, rules: CallRules) -> str:
    """What was found and what to do, quoting the rule of the notice."""
    detail = problem.detail or ""
    role = role_of(problem.role, rules)
    label = role.label if role else ""
    formats = "、".join(f".{f}" for f in role.formats) if role else ""
    match problem.code:
        case Code.UNKNOWN_ENTERPRISE:
            if problem.suggestion:
                where = f"（{detail}）" if detail else ""
                archive = (
                    f"压缩包名称“{problem.enterprise}.rar”也请一并改为“{problem.suggestion}.rar”，"
                    if problem.enterprise
                    else ""
                )
                hint = f"与名单中的“{problem.suggestion}”不一致{where}。请确认企业全称，{archive}"
            else:
                hint = "在推荐名单中没有找到与之相符的企业。请确认企业全称，"
            return (
                "通知要求邮件主题为申报企业全称（与推荐汇总表一致），"
                f"贵单位邮件的主题{hint}以企业全称作为邮件主题重新发送。"
            )
        case Code.LATE:
            deadline = f"为 {shanghai_time(rules.deadline)}，" if rules.deadline else ""
            received = f"贵单位的邮件于 {shanghai_time(datetime.fromisoformat(detail))} 收到，" if detail else ""
            return f"本次申报截止时间{deadline}{received}已超过截止时间。如有特殊情况，请按本邮件末尾的电话与我处联系。"
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
            return (
                f"分卷压缩包不完整{missing}。请补发缺少的分卷（可分多封邮件发送，每封邮件主题均为企业全称），"
                "或压缩为单个 RAR 文件后发送。"
            )
        case Code.CORRUPT_ARCHIVE:
            return "压缩包已损坏，无法完整解压。请重新压缩，确认能正常打开后再发送。"
        case Code.ARCHIVE_NAME_MISMATCH:
            where = differences(detail, problem.suggestion or "")
            return (
                f"通知要求压缩包以申报企业全称命名，应为“{problem.suggestion}.rar”，"
                f"收到的压缩包名为“{detail}.rar”{f'（{where}）' if where else ''}。请改名后重新发送。"
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
            stamped = "加盖公章的页面可扫描或拍照后插入 Word 文档中。" if problem.role == "application_form" else ""
            return (
                f"通知要求{label}为 Word 格式（{formats}），收到的是：{detail}。"
                f"请用 Word 或 WPS 另存为 .docx 格式后重新压缩发送；{stamped}"
            ).rstrip("；")
        case Code.INVALID_DOCUMENT:
            return f"{label}无法作为 Word 文档打开（{detail}）。请用 Word 或 WPS 另存为 .docx 后重新压缩发送。"
        case Code.SEAL_NOT_FOUND:
            return (
                "通知要求申报书加盖公章，系统未能在申报书中（包括其中的扫描页和图片）识别到公章印迹。"
                "请将加盖公章的页面扫描或拍照后插入申报书，重新压缩后发送。"
            )
        case Code.FOREIGN_DOCUMENT:
            return f"申报书中填写的企业为“{detail}”，与发件企业不一致。"
        case Code.UNREADABLE_DOCUMENT:
            return f"{detail}。"
        case Code.UNREADABLE_MESSAGE:
            return "贵单位的邮件无法解析，可能在传输中损坏。请重新发送。"
        case Code.MISSING_LETTER:
            return "尚未收到你局的推荐文件（PDF 格式）。请在截止时间前补发。"
        case Code.INVALID_LETTER | Code.INVALID_TABLE:
            return f"{detail}。"
        case Code.MISSING_TABLE:
            return "尚未收到你局的汇总表（Excel 格式）。请在截止时间前补发。"
        case Code.MISSING_ARCHIVE:
            return f"汇总表中的“{problem.enterprise}”尚无申报材料压缩包。请在截止时间前补发。"
        case Code.UNLISTED_ARCHIVE:
            return (
                f"压缩包“{problem.enterprise}”对应的企业不在汇总表中，已转工作人员核对。"
                "如属漏列，请补发更正后的汇总表。"
            )
        case Code.NAME_NEAR_MISS:
            return (
                f"压缩包名称与汇总表中的“{problem.enterprise}”相差一字（{detail}），"
                "请核对企业全称后更正压缩包名称重新发送。"
            )
        case Code.TOO_MANY_NATIONAL:
            return f"汇总表中列有 {detail} 家企业，超过每市推荐限额。请核减后重新报送汇总表。"
        case Code.RECOMMENDED_TWICE:
            return f"“{problem.enterprise}”已由{detail}推荐，请核实。"
        case Code.VOLUMES_PENDING:
            present, _, missing = detail.partition("|")
            return f"已收到{present}，待其余分卷{f'（{missing}）' if missing else ''}到齐后核验。"
        case _:
            return TITLES[problem.code]


def contents_text(contents: Contents | None) -> str:
    """A document's length and pictures in a few words: 3,456 字、2 张图片; 12 页."""
    if contents is None:
        return "未读取"
    parts = []
    if contents.words is not None:
        parts.append(f"{contents.words:,} 字")
    if contents.pages is not None:
        parts.append(f"{contents.pages} 页")
    if contents.pictures:
        parts.append(f"{contents.pictures} 张图片")
    return "、".join(parts) or "无内容"


def documents_text(documents: Iterable[tuple[str, Contents | None]], rules: CallRules) -> str:
    """Each document's role and length: 申报书 1,234 字、2 张图片；典型经验材料 3,456 字."""
    return "；".join(
        f"{role.label if (role := role_of(code, rules)) else code} {contents_text(contents)}"
        for code, contents in documents
    )


def copy_text(kind: CopyKind, role: str, other: str, similarity: float, rules: CallRules) -> str:
    """One document another enterprise sent too: 证明材料与“青岛……”的完全相同（同一文件）."""
    label = found.label if (found := role_of(role, rules)) else role
    if kind is CopyKind.SAME_FILE:
        return f"{label}与“{other}”的完全相同（同一文件）"
    return f"{label}与“{other}”的高度相似（相似度 {similarity:.0%}）"
