"""/metrics in the Prometheus text format: messages by verdict, decisions, enterprises by standing, the outbox
by state, seconds since the last successful mailbox sync, alerts.

The daemon records no fetch or judge durations, so none are exported. Open to anyone only when the console
listens on loopback and the request comes from this machine; otherwise it needs a login or the bearer token
named by `[web] metrics_token_env`.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterator

from flask import Blueprint, Response, abort, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import Session

from ..app.queries import decision_counts, enterprise_rows, health, verdict_counts
from ..app.views import Standing
from ..domain import Outcome
from ..service.runtime import Runtime
from ..storage.models import now
from ..storage.states import OutboxState
from .console import console, is_loopback

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    if not _allowed():
        abort(401)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(console().runtime))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _allowed() -> bool:
    if console().loopback and is_loopback(request.remote_addr):
        return True
    if g.user is not None:
        return True
    token = console().metrics_token
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


class _Figures(Collector):
    """Read from the database at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with Session(self.runtime.engine) as session:
            verdicts = verdict_counts(session)
            decisions = decision_counts(session)
            standings = Counter(r.standing for r in enterprise_rows(session))
            state = health(session)
        messages = GaugeMetricFamily(
            "shenbao_messages", "Messages received, by automatic verdict (before any decision)", labels=["verdict"]
        )
        for outcome in Outcome:
            messages.add_metric([outcome.value], verdicts.get(outcome, 0))
        yield messages
        decided = GaugeMetricFamily("shenbao_decisions", "Decisions made by people, by outcome", labels=["outcome"])
        for outcome in (Outcome.ACCEPTED, Outcome.REJECTED):
            decided.add_metric([outcome.value], decisions.get(outcome, 0))
        yield decided
        listed = GaugeMetricFamily(
            "shenbao_enterprises", "Listed enterprises (one per call), by standing", labels=["standing"]
        )
        for standing in Standing:
            listed.add_metric([standing.code], standings.get(standing, 0))
        yield listed
        outbox = GaugeMetricFamily("shenbao_outbox", "Replies and notices in the outbox, by state", labels=["state"])
        for outbox_state in OutboxState:
            outbox.add_metric([outbox_state.value], state.outbox.get(outbox_state.value, 0))
        yield outbox
        if state.last_fetch is not None:
            yield GaugeMetricFamily(
                "shenbao_seconds_since_last_sync",
                "Seconds since the mailbox was last searched successfully",
                value=(now() - state.last_fetch).total_seconds(),
            )
        yield GaugeMetricFamily(
            "shenbao_open_alerts",
            "Conditions alerted to staff and not yet cleared",
            value=sum(a.ongoing for a in state.alerts),
        )
