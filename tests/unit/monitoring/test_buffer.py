"""Buffered metric updates read, once flushed, exactly as direct ones."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from modelport.monitoring.buffer import MetricBuffer

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def families(registry: CollectorRegistry) -> dict[str, float]:
    """Every sample but the creation timestamps, by name and labels."""
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                samples[f"{sample.name}{sorted(sample.labels.items())}"] = sample.value
    return samples


def test_buffered_metrics_read_as_direct_ones() -> None:
    direct, buffered = CollectorRegistry(), CollectorRegistry()
    metrics = {}
    for name, registry in (("direct", direct), ("buffered", buffered)):
        metrics[name] = (
            Counter("c", "c", ("m",), registry=registry).labels("a"),
            Histogram("h", "h", ("m",), buckets=BUCKETS, registry=registry).labels("a"),
            Gauge("g", "g", ("m",), registry=registry).labels("a"),
        )
    buffer = MetricBuffer()
    counter, histogram, gauge = metrics["direct"]
    b_counter, b_histogram, b_gauge = metrics["buffered"]
    b_counter, b_histogram, b_gauge = (
        buffer.counter(b_counter),
        buffer.histogram(b_histogram),
        buffer.gauge(b_gauge),
    )
    rng = random.Random(7)
    # Values on the bucket bounds too: ``le`` is inclusive.
    values = [*BUCKETS, 0.0, 5.0, *(rng.uniform(0, 2) for _ in range(500))]
    for value in values:
        counter.inc(2)
        b_counter.inc(2)
        histogram.observe(value)
        b_histogram.observe(value)
        gauge.inc()
        b_gauge.inc()
    gauge.dec(3)
    b_gauge.dec(3)
    assert families(buffered)["c_total[('m', 'a')]"] == 0  # nothing written before a flush
    buffer.flush()
    assert families(buffered) == families(direct)
    buffer.flush()  # a second flush adds nothing
    assert families(buffered) == families(direct)


def test_buffered_metrics_add_up_across_workers_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With several workers the values live in memory-mapped files; what two flushes wrote
    # is what a scrape of the directory reads.
    from prometheus_client import multiprocess, values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.get_value_class())
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", buckets=BUCKETS, registry=registry)
    buffer = MetricBuffer()
    buffered = buffer.histogram(histogram)
    for value in (0.0005, 0.05, 0.05, 3.0):
        buffered.observe(value)
    buffer.flush()
    buffered.observe(0.5)
    buffer.flush()
    scrape = CollectorRegistry()
    multiprocess.MultiProcessCollector(scrape, path=str(tmp_path))
    text = generate_latest(scrape).decode()
    assert 'h_bucket{le="0.001"} 1.0' in text
    assert 'h_bucket{le="0.1"} 3.0' in text
    assert 'h_bucket{le="1.0"} 4.0' in text
    assert 'h_bucket{le="+Inf"} 5.0' in text
    assert "h_count 5.0" in text
    assert "h_sum 3.6005" in text
