"""The models a server holds: one runtime session per artifact, looked up by name (version "1")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DeployKitError
from ..runners.backends import BACKENDS
from ..runtime import Session, load
from .protocol import InferRequest, RequestError, datatype_of

VERSION = "1"
log = logging.getLogger("deploykit.serve")


@dataclass
class ServedModel:
    session: Session

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

    def infer(self, request: InferRequest) -> dict[str, np.ndarray]:
        """Run one request; a feed that does not fit the artifact becomes a 400 with the runtime's message."""
        names = list(request.outputs) if request.outputs is not None else None
        try:
            return self.session.run(request.inputs, outputs=names)
        except RequestError:
            raise
        except DeployKitError as exc:
            raise RequestError(str(exc)) from None


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
                session = load(Path(folder), backend, threads=threads)
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

    def close(self) -> None:
        for model in self.models.values():
            model.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
