"""What Prometheus scrapes from Callbridge.

Webhook counts are kept in the process that receives the webhooks. The queue's figures, the
Salesforce API usage and the Aircall budget are read from the database when scraped, so they
are right whether the worker runs in this process or in others. Each app has its own registry
(never prometheus_client's global one), so two apps in one process never share a counter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from integrations.store.models import ApiUsage, Job, RateWindow
from integrations.sync.jobs.budget import BLOCK

log = logging.getLogger(__name__)

# Why a webhook delivery was refused; the receiver names one of these.
REFUSALS = ("bad_token", "bad_body", "too_large", "error")
WEBHOOK_SOURCES = ("aircall", "salesforce")  # Aircall webhooks, Outbound Messages (T05)
NO_CODE = "unknown"  # a failed job that stored no error code
PRESENT = ("queued", "running", "failed")  # few rows, found through the status index
# Done jobs are never deleted: counting them by kind reads the whole table (0.6 s at a million
# jobs on PostgreSQL), so that count is read again at most this often.
DONE_REFRESH_SECONDS = 30.0


@dataclass
class Figures:
    """What one scrape reads from the database: a handful of aggregate queries."""

    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count
    done: dict[str, int] | None = None  # kind -> done jobs; None: not read this time
    failed: dict[str, int] = field(default_factory=dict)  # error code -> failed jobs
    queue_lag: float = 0.0  # seconds the oldest due queued job has waited past its run time
    salesforce: ApiUsage | None = None  # None until Salesforce first reported its usage
    aircall_used: int = 0  # requests spent in the current minute
    aircall_blocked: bool = False  # Aircall answered 429: nobody may spend until it says


def read(engine: Engine, now: float | None = None, *, done: bool = True) -> Figures:
    """The figures as the database holds them now (done jobs only when ``done``)."""
    now = time.time() if now is None else now
    with Session(engine) as s:
        jobs = s.exec(
            select(Job.kind, Job.status, func.count())
            .where(col(Job.status).in_(PRESENT))
            .group_by(Job.kind, Job.status)
        ).all()
        done_jobs = (
            dict(
                s.exec(
                    select(Job.kind, func.count()).where(Job.status == "done").group_by(Job.kind)
                ).all()
            )
            if done
            else None
        )
        failed = s.exec(
            select(Job.error_code, func.count())
            .where(Job.status == "failed")
            .group_by(Job.error_code)
        ).all()
        oldest = s.exec(
            select(func.min(Job.run_at)).where(Job.status == "queued", col(Job.run_at) <= now)
        ).one()
        salesforce = s.get(ApiUsage, "salesforce")
        windows = s.exec(
            select(RateWindow).where(
                RateWindow.name == "aircall", col(RateWindow.window).in_([int(now // 60), BLOCK])
            )
        ).all()
        figures = Figures(
            jobs={(kind, status): count for kind, status, count in jobs},
            done=done_jobs,
            failed={code or NO_CODE: count for code, count in failed},
            queue_lag=max(0.0, now - oldest) if oldest is not None else 0.0,
            salesforce=salesforce,
        )
    for window in windows:
        if window.window == BLOCK:
            figures.aircall_blocked = window.blocked_until > now
        else:
            figures.aircall_used = window.used
    return figures


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class StoreCollector(Collector):
    """Reads ``Figures`` at each scrape; a database that does not answer gives ``up 0``."""

    def __init__(self, engine: Engine, aircall_limit: int) -> None:
        self.engine = engine
        self.aircall_limit = aircall_limit
        self._done: dict[str, int] = {}
        self._done_at = float("-inf")  # monotonic time of the last count of done jobs

    def collect(self) -> Iterator[Metric]:
        up = "callbridge_database_up"
        up_help = "1 when this scrape could read the database, 0 when it did not answer"
        started = time.monotonic()
        try:
            figures = read(self.engine, done=started - self._done_at >= DONE_REFRESH_SECONDS)
        except SQLAlchemyError:
            log.warning("metrics.database_unavailable", exc_info=True)
            yield _gauge(up, up_help, 0)
            return
        if figures.done is not None:
            self._done, self._done_at = figures.done, started
        yield _gauge(up, up_help, 1)
        jobs = GaugeMetricFamily(
            "callbridge_jobs",
            "Jobs by kind and state: queued, running, failed, and done (done is counted again "
            f"at most every {DONE_REFRESH_SECONDS:.0f} s)",
            labels=["kind", "state"],
        )
        counts = figures.jobs | {(kind, "done"): count for kind, count in self._done.items()}
        for (kind, state), count in sorted(counts.items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        failed = GaugeMetricFamily(
            "callbridge_failed_jobs",
            "Jobs parked as failed, by the error code they stored (Salesforce's errorCode, or "
            "the kind of error); they wait for a fix and a re-sync",
            labels=["error_code"],
        )
        for code, count in sorted(figures.failed.items()):
            failed.add_metric([code], count)
        yield failed
        yield _gauge(
            "callbridge_queue_lag_seconds",
            "How long the oldest queued job that is due has waited past the time it was due "
            "to run (0 when none waits)",
            figures.queue_lag,
        )
        if figures.salesforce is not None:
            usage = figures.salesforce
            yield _gauge(
                "callbridge_salesforce_api_used_requests",
                "Salesforce API requests the org used in the last 24 hours, as Salesforce last "
                "reported (Sforce-Limit-Info)",
                usage.used,
            )
            yield _gauge(
                "callbridge_salesforce_api_limit_requests",
                "The org's Salesforce API requests allowed per 24 hours, as last reported",
                usage.max,
            )
            yield _gauge(
                "callbridge_salesforce_api_updated_timestamp_seconds",
                "When Salesforce last reported the org's API usage (UNIX time)",
                usage.updated_at,
            )
        left = 0 if figures.aircall_blocked else max(0, self.aircall_limit - figures.aircall_used)
        yield _gauge(
            "callbridge_aircall_budget_remaining_requests",
            "Aircall API requests left this minute in the budget all workers share (0 while "
            "Aircall has told us to wait)",
            left,
        )
        yield _gauge(
            "callbridge_aircall_budget_limit_requests",
            "Aircall API requests allowed per minute for the company (AIRCALL_RATE_LIMIT)",
            self.aircall_limit,
        )


class _Forward(Collector):
    """Whatever ``source`` holds at scrape time (the in-process worker's histogram, if any)."""

    def __init__(self, source: Callable[[], Histogram | None]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        histogram = self.source()
        if histogram is not None:
            yield from histogram.collect()


class Metrics:
    """One app's metrics: webhook counters and the collectors that read the rest."""

    def __init__(
        self,
        engine: Engine,
        aircall_limit: int,
        durations: Callable[[], Histogram | None] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.webhooks_accepted = Counter(
            "callbridge_webhooks_accepted",
            "Webhook deliveries answered with success (stored, or known as a retry of one "
            "already stored)",
            ["source"],
            registry=self.registry,
        )
        self.webhooks_refused = Counter(
            "callbridge_webhooks_refused",
            "Webhook deliveries refused, by reason: bad_token (no configured token matches), "
            "bad_body (not a valid delivery), too_large (over the size limit), error (we "
            "failed to store it; the sender retries)",
            ["source", "reason"],
            registry=self.registry,
        )
        # Zeros from the start (rate() needs a first sample); the children are kept, since
        # ``labels()`` costs a lock and a lookup on every delivery otherwise.
        self._accepted = {
            source: self.webhooks_accepted.labels(source) for source in WEBHOOK_SOURCES
        }
        self._refused = {
            (source, reason): self.webhooks_refused.labels(source, reason)
            for source in WEBHOOK_SOURCES
            for reason in REFUSALS
        }
        self.registry.register(StoreCollector(engine, aircall_limit))
        self.registry.register(_Forward(durations))

    def accepted(self, source: str) -> None:
        self._accepted[source].inc()

    def refused(self, source: str, reason: str) -> None:
        self._refused[(source, reason)].inc()

    def render(self) -> bytes:
        """The Prometheus text format; reads the database, so call it off the event loop."""
        return generate_latest(self.registry)
