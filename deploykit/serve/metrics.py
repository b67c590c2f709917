"""Prometheus metrics for the server, in prometheus-client's own registry and text format (GET /metrics).

Per served model (and protocol, for what a protocol sees):
    deploykit_requests_total            infer requests received for the model
    deploykit_request_failures_total    of those, the ones answered with an error
    deploykit_inferences_total          items inferred (batch rows: a request of B=3 counts 3)
    deploykit_executions_total          model runs (one per batch when batching)
    deploykit_request_duration_seconds  a request, from its body read to its response encoded
    deploykit_queue_duration_seconds    waiting for a model run (the batcher's queue, or the TensorRT lock)
    deploykit_compute_duration_seconds  one model run
    deploykit_batch_size                rows per model run
    deploykit_rejected_requests_total   requests answered 503 before reaching a model, per protocol and reason
                                        ("server": --max-concurrency, "client": --max-client-concurrency)

The names follow Triton's (nv_inference_request_success, nv_inference_count, nv_inference_exec_count,
queue/compute durations) so dashboards map one to one. Each server owns a CollectorRegistry: two
servers in one process (tests) never share counts. Unknown model names are not labels: a client must
not be able to grow the label set.
"""

from __future__ import annotations

import contextlib
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# seconds: 0.5 ms .. 10 s, dense where a 2-core CPU server lives (1-50 ms)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("deploykit_requests", "Infer requests received", ["model", "protocol"], registry=r)
        self.failures = Counter("deploykit_request_failures", "Infer requests answered with an error",
                                ["model", "protocol"], registry=r)
        self.inferences = Counter("deploykit_inferences", "Items inferred (batch rows)", ["model"], registry=r)
        self.executions = Counter("deploykit_executions", "Model runs", ["model"], registry=r)
        self.request_seconds = Histogram("deploykit_request_duration_seconds", "Infer request latency",
                                         ["model", "protocol"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("deploykit_queue_duration_seconds", "Time waiting for a model run",
                                       ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.compute_seconds = Histogram("deploykit_compute_duration_seconds", "Model run time",
                                         ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("deploykit_rejected_requests", "Requests refused with 503 (busy)",
                                ["protocol", "reason"], registry=r)
        self.batch_size = Histogram("deploykit_batch_size", "Rows per model run", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)

    @contextlib.contextmanager
    def request(self, model: str, protocol: str):
        """Count one infer request for a served model; an exception leaving the block is a failure."""
        self.requests.labels(model, protocol).inc()
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.failures.labels(model, protocol).inc()
            raise
        finally:
            self.request_seconds.labels(model, protocol).observe(time.perf_counter() - start)

    def execution(self, model: str, rows: int, queued: float, compute: float) -> None:
        self.executions.labels(model).inc()
        self.inferences.labels(model).inc(rows)
        self.batch_size.labels(model).observe(rows)
        self.queue_seconds.labels(model).observe(queued)
        self.compute_seconds.labels(model).observe(compute)

    def render(self) -> bytes:
        return generate_latest(self.registry)
