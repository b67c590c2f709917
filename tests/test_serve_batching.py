"""Dynamic batching: concurrent requests run as batches along the batch axis, each gets its own rows back,
a bad request fails alone, and a lone request pays no queue delay."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from deploykit import runtime
from deploykit.errors import DeployKitError
from deploykit.serve import ModelRepository
from deploykit.serve.batching import Batcher, batch_limit
from deploykit.serve.protocol import InferRequest, RequestError
from deploykit.serve.metrics import ServerMetrics

from .artifact_cache import exported_artifact


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return {name: exported_artifact(tmp_path_factory, name) for name in ("cbam", "fpn")}


def _fpn_feed(rng, B, H, W):
    return {"C3": rng.standard_normal((B, 16, 4 * H, 4 * W), dtype=np.float32),
            "C4": rng.standard_normal((B, 32, 2 * H, 2 * W), dtype=np.float32),
            "C5": rng.standard_normal((B, 64, H, W), dtype=np.float32)}


def test_batch_axis_comes_from_the_artifact(artifacts):
    with runtime.load(artifacts["fpn"], backend="ort-cpu") as session:
        symbol, limit, reason = batch_limit(session)
    assert (symbol, limit) == ("B", 4) and "axis 0 of every input and output" in reason


def test_concurrent_requests_are_batched_and_split_back(artifacts):
    """Mixed batch sizes and shapes from 24 threads: every answer equals that request run alone."""
    rng = np.random.default_rng(0)
    feeds = [_fpn_feed(rng, 1 + i % 3, (4, 8)[i % 2], 4) for i in range(24)]
    with runtime.load(artifacts["fpn"], backend="ort-cpu") as session:
        alone = [session.run(f) for f in feeds]
    metrics = ServerMetrics()
    with ModelRepository.load([artifacts["fpn"]], backend="ort-cpu") as repository:
        notes = repository.enable(metrics=metrics, batching=True, max_batch=3, max_delay_ms=30.0)
        assert notes["fpn"] == "up to 3 rows along B, max delay 30 ms"
        model = repository.models["fpn"]
        start = threading.Barrier(len(feeds))

        def one(feed):
            start.wait()
            return model.infer(InferRequest(None, feed, {"P3": True, "P7": True}, True))

        with ThreadPoolExecutor(len(feeds)) as pool:
            answers = list(pool.map(one, feeds))
    for feed, answer, expected in zip(feeds, answers, alone):
        assert list(answer) == ["P3", "P7"]
        for name in answer:
            assert answer[name].shape == expected[name].shape
            # a batched run may sum in another order than a lone one: equal to float32 rounding
            np.testing.assert_allclose(answer[name], expected[name], rtol=1e-5, atol=1e-5)
    rows = sum(f["C5"].shape[0] for f in feeds)
    sizes = metrics.batch_size.labels("fpn")
    runs = metrics.executions.labels("fpn")._value.get()
    assert metrics.inferences.labels("fpn")._value.get() == rows == sizes._sum.get()
    assert runs < len(feeds)  # batches formed
    # no batch beyond max_batch: every observation falls in a bucket <= 3
    buckets = dict(zip(sizes._upper_bounds, (b.get() for b in sizes._buckets)))
    assert sum(count for bound, count in buckets.items() if bound > 3) == 0


def test_a_bad_request_fails_alone(artifacts):
    with ModelRepository.load([artifacts["cbam"]], backend="ort-cpu") as repository:
        repository.enable(batching=True, max_delay_ms=50.0)
        model = repository.models["cbam"]
        good = {"x": np.ones((1, 64, 8, 8), np.float32)}
        bad = {"x": np.ones((1, 64, 65, 8), np.float32)}
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(model.infer, InferRequest(None, f, None, True)) for f in (good, bad, good, good)]
        with pytest.raises(RequestError, match="H=65"):
            futures[1].result()
        for future in (futures[0], futures[2], futures[3]):
            assert future.result()["y"].shape == (1, 64, 8, 8)


def test_a_lone_request_does_not_wait_for_the_window(artifacts):
    """No other request on its way: the batch runs at once instead of after max_delay (here 2 s)."""
    with ModelRepository.load([artifacts["cbam"]], backend="ort-cpu") as repository:
        repository.enable(batching=True, max_delay_ms=2000.0)
        model = repository.models["cbam"]
        request = InferRequest(None, {"x": np.ones((1, 64, 8, 8), np.float32)}, None, True)
        model.infer(request)  # warm-up
        started = time.perf_counter()
        with model.arriving() as arrival:
            model.infer(request, arrival)
        assert time.perf_counter() - started < 1.0
        # while another request is announced (being read), the batch waits for it
        waiter = model.arriving()
        arrival = waiter.__enter__()
        done = threading.Event()
        threading.Thread(target=lambda: (model.infer(request), done.set()), daemon=True).start()
        assert not done.wait(0.3)
        waiter.__exit__(None, None, None)  # the announced request failed before queueing: stop waiting
        assert done.wait(5)
        assert not arrival.pending


def test_shutdown_runs_what_is_queued_then_refuses(artifacts):
    with runtime.load(artifacts["cbam"], backend="ort-cpu") as session:
        batcher = Batcher(session, 4, 0.2)
        future = batcher.submit({"x": np.ones((1, 64, 8, 8), np.float32)}, 1, announced=False)
        batcher.close()
        assert future.result(5)["y"].shape == (1, 64, 8, 8)
        with pytest.raises(DeployKitError, match="shutting down"):
            batcher.submit({"x": np.ones((1, 64, 8, 8), np.float32)}, 1)
