"""The runner's Prometheus metrics, labelled by group and topic."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agentflux._accelerate import accelerations_wanted

__all__ = ["RunnerMetrics", "observe_many"]

_HISTOGRAM_PARTS = (
    "_upper_bounds",
    "_buckets",
    "_sum",
)  # prometheus_client's internals (accelerated)


def observe_many(histogram: Histogram, value: float, count: int) -> None:
    """``count`` observations of ``value`` at once (a batch's events share its mean latency).

    prometheus_client observes one value at a time; for a labelled child whose buckets are
    visible this adds ``count`` to the one bucket directly, and falls back to a loop otherwise.
    """
    found = (getattr(histogram, name, None) for name in _HISTOGRAM_PARTS)
    bounds, buckets, total = found if accelerations_wanted() else (None, None, None)
    if bounds is None or buckets is None or total is None:
        for _ in range(count):
            histogram.observe(value)
        return
    total.inc(value * count)
    for bound, bucket in zip(bounds, buckets, strict=True):
        if value <= bound:
            bucket.inc(count)
            return


class RunnerMetrics:
    """Prometheus metrics of one runner, in a registry of its own."""

    def __init__(self, group: str, registry: CollectorRegistry | None = None) -> None:
        """Create the metrics, labelled by group."""
        self.registry = registry or CollectorRegistry()
        labels = ["group", "topic"]
        self.handled = Counter(
            "agentflux_records_handled", "Records handled", labels, registry=self.registry
        )
        self.failed = Counter(
            "agentflux_handler_failures",
            "Handler attempts that raised",
            labels,
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "agentflux_records_dead_lettered",
            "Records sent to the DLQ",
            labels,
            registry=self.registry,
        )
        self.skipped = Counter(
            "agentflux_records_skipped",
            "Unknown or unhandled types",
            labels,
            registry=self.registry,
        )
        self.redelivered = Counter(
            "agentflux_records_redelivered",
            "Records whose effect the store already had (redelivery or replay); never applied twice",
            labels,
            registry=self.registry,
        )
        self.lag = Gauge(
            "agentflux_consumer_lag",
            "Records behind the end",
            [*labels, "partition"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentflux_handler_seconds", "Handler latency", labels, registry=self.registry
        )
        self.registry_waits = Counter(
            "agentflux_registry_waits",
            "Times a record waited for an unreachable schema registry (never dead-lettered for it)",
            ["group"],
            registry=self.registry,
        )
        self.batch_fallbacks = Counter(
            "agentflux_batch_fallbacks",
            "Fetches whose joint store transaction failed and were applied record by record",
            ["group"],
            registry=self.registry,
        )
        self.group = group
