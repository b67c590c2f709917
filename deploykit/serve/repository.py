"""The models a server holds: one runtime session per artifact, looked up by name (version "1")."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeployKitError
from ..backends import BACKENDS
from ..runtime import Session, load
from .batching import Batcher, batch_limit
from .protocol import InferRequest, RequestError, datatype_of

VERSION = "1"
log = logging.getLogger("deploykit.serve")


class _Arrival:
    def __init__(self, batcher):
        self.batcher = batcher
        self.pending = batcher is not None


@dataclass
class ServedModel:
    session: Session
    batcher: object = None  # a serve.batching.Batcher when dynamic batching is on for this model
    batch_symbol: str | None = None
    metrics: object = None  # serve.metrics.ServerMetrics

    @property
    def name(self) -> str:
        return self.session.name

    def metadata(self) -> dict:
        """KServe v2 model metadata: -1 marks every dynamic axis."""
        fixed = self.session.fixed_symbols()

        def tensors(infos, dtypes):
            return [{"name": t.name, "datatype": datatype_of(dtypes[t.name]), "shape": t.kserve_shape(fixed)} for t in infos]

        inputs = {t.name: t.dtype for t in self.session.inputs}
        outputs = {t.name: t.dtype for t in self.session.outputs}
        return {"name": self.name, "versions": [VERSION], "platform": BACKENDS[self.session.backend].triton_platform,
                "inputs": tensors(self.session.inputs, inputs), "outputs": tensors(self.session.outputs, outputs)}

    @contextlib.contextmanager
    def arriving(self):
        """Around reading and decoding one request, then ``infer(request, arrival)``: a forming batch may
        wait for an announced request (see serve.batching); one that fails before queueing is withdrawn."""
        arrival = _Arrival(self.batcher)
        if arrival.batcher is not None:
            arrival.batcher.announce()
        try:
            yield arrival
        finally:
            if arrival.pending:
                arrival.pending = False
                arrival.batcher.withdraw()

    def infer(self, request: InferRequest, arrival: "_Arrival | None" = None) -> dict[str, np.ndarray]:
        """Run one request (HTTP and gRPC both end here): a feed that does not fit the artifact is a 400
        with the runtime's message; with a batcher, a fitting feed waits for its batch."""
        names = list(request.outputs) if request.outputs is not None else None
        try:
            if names is not None:
                unknown = [n for n in names if n not in self.session.output_names]
                if unknown:
                    raise DeployKitError(f"{self.name}: unknown output(s) {unknown} "
                                         f"(outputs: {self.session.output_names})")
            if self.batcher is not None:
                values = self.session.check_feed(request.inputs)
                announced = arrival is not None and arrival.pending and arrival.batcher is self.batcher
                if announced:
                    arrival.pending = False
                results = self.batcher.submit(request.inputs, values[self.batch_symbol], announced).result()
            else:
                started = time.perf_counter()
                results = self.session.run(request.inputs)
                if self.metrics is not None:
                    rows = next(iter(request.inputs.values())).shape[0] if self.batch_symbol else 1
                    self.metrics.execution(self.name, rows, 0.0, time.perf_counter() - started)
        except RequestError:
            raise
        except DeployKitError as exc:
            raise RequestError(str(exc)) from None
        return {n: results[n] for n in (names or self.session.output_names)}


class ModelRepository:
    """Artifacts loaded once at startup; every one must load, or the server does not start."""

    def __init__(self, models: dict[str, ServedModel]):
        self.models = models

    @classmethod
    def load(cls, artifact_dirs, backend: str = "auto", threads: int | None = None) -> "ModelRepository":
        if not artifact_dirs:
            raise DeployKitError("name at least one artifact folder to serve (e.g. artifacts/cbam)")
        models: dict[str, ServedModel] = {}
        try:
            for folder in artifact_dirs:
                session = load(Path(folder), backend, threads=threads, spinning=False)
                if session.name in models:
                    session.close()
                    raise DeployKitError(f"two artifacts are named {session.name!r} "
                                         f"({models[session.name].session.artifact.dir} and {folder})")
                models[session.name] = ServedModel(session)
                log.info("loaded %s from %s on %s", session.name, folder, session.backend)
        except BaseException:
            for model in models.values():
                model.session.close()
            raise
        return cls(models)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise RequestError(f"unknown model {name!r} (served: {', '.join(sorted(self.models))})", 404)
        if version not in (None, "", VERSION):
            raise RequestError(f"model {name!r} has no version {version!r} (versions: {VERSION})", 404)
        return model

    def enable(self, *, metrics=None, batching: bool = False, max_batch: int | None = None,
               max_delay_ms: float = 2.0) -> dict[str, str]:
        """Attach metrics and (optionally) a batcher to every model; returns model -> how it is batched.

        A model batches up to min(max_batch, the artifact's batch max); one that cannot batch (no
        batch axis Triton's way) runs request by request, and the returned note says why.
        """
        notes = {}
        for model in self.models.values():
            model.metrics = metrics
            symbol, limit, reason = batch_limit(model.session)
            model.batch_symbol = symbol
            if not batching:
                notes[model.name] = "off"
                continue
            if symbol is None:
                notes[model.name] = f"off: {reason}"
                continue
            size = min(limit, max_batch) if max_batch else limit
            on_execution = (lambda rows, queued, compute, name=model.name:
                            metrics.execution(name, rows, queued, compute)) if metrics is not None else None
            model.batcher = Batcher(model.session, size, max_delay_ms / 1000.0, on_execution)
            notes[model.name] = f"up to {size} rows along {symbol}, max delay {max_delay_ms:g} ms"
        return notes

    def close(self) -> None:
        for model in self.models.values():
            if model.batcher is not None:
                model.batcher.close()
                model.batcher = None
        for model in self.models.values():
            model.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
