"""The daemon's Prometheus metrics: what is counted as it happens, and the text format.

Counters and histograms live here, one set per application (their own registry, so two
daemons in one test process never share a count). The places that already know what
happened record it with one call: the plugin contexts (host/context.py) a claim or a
reconcile, the store's writer a commit (through the callback it exposes), the HTTP
middleware a request. Values that are cheaper to read than to keep up to date (resources
by status, queue depths, file sizes, plugin states) are gathered when /metrics is read
and handed to `render` as families.

Names and labels follow controller-runtime's where the meaning matches, so dashboards
made for Kubernetes controllers work: a "controller" or queue "name" is a reconciler
plugin. The rest is prefixed `no8sd_`.

prometheus-client costs about 15 ms of start-up and 1 MiB of memory (measured); it is
imported only when metrics are on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# Every name here is a classic one, so the output is the 0.0.4 format every Prometheus
# version reads (the client's default label says 1.0.0 in recent versions).
CONTENT_TYPE: str = getattr(prometheus_client.exposition, "CONTENT_TYPE_PLAIN_0_0_4",
                            prometheus_client.CONTENT_TYPE_LATEST)

# The `_created` series the client adds by default mean nothing to these dashboards and
# double the size of every scrape.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                     300.0)
QUEUE_BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Family:
    """A metric whose samples are read at scrape time."""

    name: str
    help: str
    labels: Sequence[str] = ()
    kind: str = "gauge"  # gauge | counter
    samples: list[tuple[Sequence[str], float]] = field(default_factory=list)

    def add(self, value: float, *labels: str) -> Family:
        """Add one sample (label values in the order of `labels`)."""
        self.samples.append((labels, value))
        return self


class Metrics:
    """The counters of one daemon, and its /metrics text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._request_counters: dict[tuple[str, str, int], Any] = {}
        self._request_timers: dict[tuple[str, str], Any] = {}
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total", "Reconciles per controller and result "
            "(success, error, requeue_after).", ["controller", "result"], registry=r)
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total", "Reconciles that failed.",
            ["controller"], registry=r)
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds", "How long reconciles took.",
            ["controller"], buckets=RECONCILE_BUCKETS, registry=r)
        self.queue_adds = Counter(
            "workqueue_adds_total", "Resources handed to their reconciler.", ["name"],
            registry=r)
        self.queue_retries = Counter(
            "workqueue_retries_total", "Resources put back with backoff after a failure.",
            ["name"], registry=r)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds", "How long a resource was due before its "
            "reconciler took it.", ["name"], buckets=QUEUE_BUCKETS, registry=r)
        self.http_requests = Counter(
            "no8sd_http_requests_total", "HTTP requests by method, route template and status "
            "code.", ["method", "route", "code"], registry=r)
        self.http_duration = Histogram(
            "no8sd_http_request_duration_seconds", "HTTP request latency by method and route "
            "template (event streams excluded).", ["method", "route"], buckets=HTTP_BUCKETS,
            registry=r)
        self.commit_units = Histogram(
            "no8sd_db_commit_batch_units", "Write units committed together in one "
            "transaction.", buckets=BATCH_BUCKETS, registry=r)
        self.commit_time = Histogram(
            "no8sd_db_commit_duration_seconds", "How long a commit took (the wait for the "
            "disk).", buckets=COMMIT_BUCKETS, registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, _cpu_seconds, _open_fds

    # ---- recorded as it happens ------------------------------------------------------

    def observe_claim(self, controller: str, waited: Sequence[float]) -> None:
        """A reconciler took resources that had been due for `waited` seconds each."""
        if not waited:
            return
        self.queue_adds.labels(controller).inc(len(waited))
        histogram = self.queue_duration.labels(controller)
        for seconds in waited:
            histogram.observe(max(0.0, seconds))

    def observe_reconcile(self, controller: str, *, success: bool, requeue_after: bool,
                          seconds: float | None) -> None:
        """A reconcile ended."""
        result = "error" if not success else "requeue_after" if requeue_after else "success"
        self.reconcile_total.labels(controller, result).inc()
        if not success:
            # As in controller-runtime, an error puts the item back with backoff: a retry.
            self.reconcile_errors.labels(controller).inc()
            self.queue_retries.labels(controller).inc()
        if seconds is not None:
            self.reconcile_time.labels(controller).observe(max(0.0, seconds))

    def observe_commit(self, units: int, seconds: float) -> None:
        """The store committed a batch."""
        self.commit_units.observe(units)
        self.commit_time.observe(seconds)

    def observe_request(self, method: str, route: str, code: int,
                        seconds: float | None) -> None:
        """An HTTP request was answered (`seconds` None for a stream)."""
        # The labelled children are looked up once per (method, route, code): labels()
        # validates and locks on every call, a cost paid on every request otherwise.
        # Routes are templates and methods a fixed set, so these dicts stay small.
        counter = self._request_counters.get((method, route, code))
        if counter is None:
            counter = self._request_counters[(method, route, code)] = \
                self.http_requests.labels(method, route, str(code))
        counter.inc()
        if seconds is not None:
            timer = self._request_timers.get((method, route))
            if timer is None:
                timer = self._request_timers[(method, route)] = \
                    self.http_duration.labels(method, route)
            timer.observe(seconds)

    # ---- the text format -------------------------------------------------------------

    def render(self, families: Sequence[Family]) -> bytes:
        """Every metric in the Prometheus text format, with `families` read just now."""
        return prometheus_client.generate_latest(_Scrape(self.registry, families))


class _Scrape:
    """One scrape: the registry's metrics, then the families gathered for it."""

    def __init__(self, registry: CollectorRegistry, families: Sequence[Family]) -> None:
        self._registry = registry
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        for family in self._families:
            metric: Any
            if family.kind == "counter":
                metric = CounterMetricFamily(family.name, family.help,
                                             labels=list(family.labels))
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
            for labels, value in family.samples:
                metric.add_metric(list(labels), value)
            yield metric
