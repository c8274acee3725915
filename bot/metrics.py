"""Process metrics for /metrics (prometheus-client), named ``dutybot_*``.

Counters and histograms are updated where things happen (the sender, the engine); gauges of
the store (queue depth, oldest due row, notifications by state) are read from the database
when /metrics is scraped (:func:`bot.health.collect_store_gauges`), so they are true for every
worker sharing the database, not just this process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SENDS = Counter(
    "dutybot_sends",
    "Send attempts by platform and outcome (sent, retry, throttled, failed, gone, fenced).",
    ["platform", "outcome"],
    registry=REGISTRY,
)
THROTTLED = Counter(
    "dutybot_throttled",
    "Platform answers asking to slow down (HTTP 429 or the platform's rate-limit codes).",
    ["platform"],
    registry=REGISTRY,
)
TIMEOUT_RESENDS = Counter(
    "dutybot_timeout_resends",
    "Sends that timed out after the platform may have accepted them (a retry may repeat one).",
    ["platform"],
    registry=REGISTRY,
)
SEND_LATENCY = Histogram(
    "dutybot_send_latency_seconds",
    "Round trip of one send to the platform (pacing waits excluded).",
    ["platform"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "dutybot_tick_seconds",
    "Duration of one planning pass (engine plan, digests, gathering into bundles).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
CIRCUIT_OPEN = Gauge(
    "dutybot_circuit_open",
    "1 while a platform's circuit is open (an outage: sending paused, probing).",
    ["platform"],
    registry=REGISTRY,
)
PLANNING_ERRORS = Counter(
    "dutybot_planning_errors",
    "Occurrences whose planning failed (recorded on the row; the rest carried on).",
    registry=REGISTRY,
)
