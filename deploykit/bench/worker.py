"""One backend, loaded once and timed in rounds: in a fresh process (the default) or in this one.

Why a process per backend: peak memory is the process's RSS high-water mark (measure.py), which
only means "this backend" in a process that loaded nothing else (the in-process worker reports none); and a crashing native library
(TensorRT without a GPU, a bad model) takes down only its worker.

Why rounds: the parent asks every backend's worker for a few calls in turn (torch, ort, torch, ort...)
instead of timing one backend after the other, so a burst of load from other processes on the
machine hits every backend alike rather than whichever happened to be running.
"""

from __future__ import annotations

import importlib
import multiprocessing
from dataclasses import dataclass

from ..errors import DeployKitError
from ..artifact import Artifact
from ..backends import parse_target
from ..recipe import load_recipe
from ..tensors.shapes import ShapeCase
from .measure import PeakMemory, time_calls


@dataclass(frozen=True)
class WorkSpec:
    target: str  # backend[/precision]
    artifact_dir: str
    recipe_path: str
    shape: dict
    threads: int | None
    warmup: int
    seed: int = 0
    trusted: bool = True  # the recipe's Recipe.trusted: the worker runs an artifact's factory only when the user did


class BackendSession:
    """The runner of one backend on one input, warmed up; ``run(n)`` times n calls."""

    def __init__(self, spec: WorkSpec):
        target = parse_target(spec.target)
        for module in target.backend.preload:
            importlib.import_module(module)
        recipe = load_recipe(spec.recipe_path, trusted=spec.trusted)
        artifact = Artifact.open(spec.artifact_dir)
        self.feed = recipe.make_inputs(ShapeCase("bench", dict(spec.shape)), spec.seed)
        self.peak_memory = PeakMemory()
        self.peak_memory.start()
        self.runner = target.backend.open(artifact, target.precision, recipe=recipe, threads=spec.threads)
        self.runner.__enter__()
        self.runner.check_feed(self.feed)  # validated once; the timed call is the backend's own
        self.call = lambda: self.runner.infer_impl(self.feed)
        time_calls(self.call, 0, spec.warmup)
        self.info = self.runner.describe()

    def run(self, iters: int) -> list[float]:
        return time_calls(self.call, iters)

    def memory(self) -> dict:
        return self.peak_memory.read()

    def close(self) -> None:
        self.runner.__exit__(None, None, None)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, DeployKitError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _serve(conn, spec: WorkSpec) -> None:
    """The worker process: open the session, then answer ("run", n) and ("stop", None)."""
    try:
        session = BackendSession(spec)
    except BaseException as exc:  # any failure to load is reported, not raised in a child nobody watches
        conn.send(("error", _one_line(exc)))
        return
    conn.send(("ready", session.info))
    while True:
        command, argument = conn.recv()
        try:
            if command == "run":
                conn.send(("times", session.run(argument)))
            else:
                conn.send(("memory", session.memory()))
                session.close()
                return
        except BaseException as exc:
            conn.send(("error", _one_line(exc)))
            return


class WorkerFailed(Exception):
    """The backend failed to load or to run; the message is one line."""


class ProcessWorker:
    """A backend in its own fresh interpreter (multiprocessing "spawn": nothing inherited, not even RSS)."""

    isolated = True

    def __init__(self, spec: WorkSpec):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.info = self._expect("ready")

    def _expect(self, kind: str):
        try:
            got, value = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5)
            raise WorkerFailed(f"the worker process died (exit code {self.process.exitcode})") from None
        if got == "error":
            self.process.join(5)
            raise WorkerFailed(value)
        return value

    def run(self, iters: int) -> list[float]:
        self.conn.send(("run", iters))
        return self._expect("times")

    def stop(self) -> dict | None:
        try:
            self.conn.send(("stop", None))
            return self._expect("memory")
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class InProcessWorker:
    """The same session in this process: faster to start, no memory figure (other backends share the RSS)."""

    isolated = False

    def __init__(self, spec: WorkSpec):
        try:
            self.session = BackendSession(spec)
        except Exception as exc:
            raise WorkerFailed(_one_line(exc)) from None
        self.info = self.session.info

    def run(self, iters: int) -> list[float]:
        try:
            return self.session.run(iters)
        except Exception as exc:
            raise WorkerFailed(_one_line(exc)) from None

    def stop(self) -> dict | None:
        self.session.close()
        return None

    def kill(self) -> None:
        self.session.close()
