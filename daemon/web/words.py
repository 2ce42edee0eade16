"""What templates say: times in Asia/Shanghai, sizes, and the Chinese words for codes, from `daemon.explain`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..app.views import Standing
from ..campaign import CallRules
from ..domain import MessageKind, Outcome, Problem
from ..explain import (
    OUTCOME_WORDS,
    REPLY_WORDS,
    STATE_WORDS,
    advice,
    grouped,
    human_size,
    role_of,
    shanghai_time,
    title,
)
from ..storage.states import OutboxState, UserRole

KIND_WORDS = {
    MessageKind.SUBMISSION: "企业申报",
    MessageKind.BUREAU: "市局报送",
    MessageKind.QUESTION: "来信咨询",
    MessageKind.IGNORED: "已忽略的邮件",
    MessageKind.UNREADABLE: "无法解析的邮件",
}

ROLE_WORDS = {UserRole.VIEWER: "查看者", UserRole.STAFF: "工作人员", UserRole.ADMIN: "管理员"}

ACTION_WORDS = {
    "login": "登录",
    "login_refused": "登录失败",
    "logout": "退出",
    "accepted": "人工受理",
    "rejected": "人工退回",
    "confirmed": "确认市局报送",
    "resent": "重新发送回复",
    "attached": "添加下载的压缩包",
    "download": "下载",
}


def when(moment: datetime | None) -> str:
    return shanghai_time(moment) if moment else "—"


def countdown(deadline: datetime | None, moment: datetime) -> str:
    """Time left until a deadline, in days and hours, or that it has passed."""
    if deadline is None:
        return "未设截止时间"
    left = deadline - moment
    if left.total_seconds() <= 0:
        return "已截止"
    hours = int(left.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"还剩 {days} 天 {hours} 小时"
    minutes = int(left.total_seconds() // 60) % 60
    return f"还剩 {hours} 小时 {minutes} 分钟"


def template_words(rules: CallRules) -> dict[str, Any]:
    """Globals for every template."""

    def call_name(code: str | None) -> str:
        found = rules.call(code)
        return (found.name or found.code) if found else (code or "—")

    def problem_title(problem: Problem) -> str:
        return title(problem, rules)

    def problem_advice(problem: Problem) -> str:
        text = advice(problem, rules)
        return "" if text == title(problem, rules) else text

    def role_label(code: str) -> str:
        found = role_of(code, rules)
        return found.label if found else code

    def outcome(value: Outcome) -> str:
        return OUTCOME_WORDS[value]

    def reply_kind(kind: str) -> str:
        return REPLY_WORDS.get(kind, kind)

    def reply_state(state: OutboxState | str) -> str:
        return STATE_WORDS.get(str(state), str(state))

    return {
        "call_name": call_name,
        "problem_title": problem_title,
        "problem_advice": problem_advice,
        "outcome_words": outcome,
        "role_label": role_label,
        "reply_kind": reply_kind,
        "reply_state": reply_state,
        "when": when,
        "grouped": grouped,
        "size": human_size,
        "kind_words": KIND_WORDS,
        "role_words": ROLE_WORDS,
        "action_words": ACTION_WORDS,
        "standings": list(Standing),
        "calls": rules.calls,
        "cities": [bureau.city for bureau in rules.bureaus],
    }
