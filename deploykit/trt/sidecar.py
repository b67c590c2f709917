"""The JSON sidecar next to every plan (``model.fp16.plan`` -> ``model.fp16.plan.json``).

The plan itself stays a plain serialized engine (no header), so trtexec and Triton read it as is;
what the engine is tied to lives here: TensorRT version, GPU name and compute capability, the
optimization profile, the precision path, calibration provenance and the ONNX sha256. Loading
checks the sidecar first and refuses an engine from another TensorRT version or GPU with a clear
message, instead of letting deserialization crash or fail obscurely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import DeployKitError
from ..store.files import read_json, sha256_file
from .onnx_support import parse_version
from .shape_profile import Profile

SIDECAR_FORMAT = 1


def sidecar_path(plan_path: str | Path) -> Path:
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


@dataclass
class Sidecar:
    plan: str
    plan_sha256: str
    tensorrt: str
    gpu: dict                 # {"name": ..., "compute_capability": "8.6"}
    profile: dict             # Profile.as_dict()
    precision: dict           # PrecisionPlan.as_dict()
    onnx: dict                # {"file": ..., "sha256": ...}
    calibration: dict | None = None
    recipe: dict = field(default_factory=dict)
    build: dict = field(default_factory=dict)
    created: str = ""
    format: int = SIDECAR_FORMAT

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def profile_obj(self) -> Profile:
        return Profile.from_dict(self.profile)


def write_sidecar(step, plan_file: str, sidecar: Sidecar) -> str:
    """Stage the sidecar of ``plan_file`` in ``step`` (store/writer.py), beside the plan; its name."""
    if not sidecar.created:
        sidecar.created = datetime.now(UTC).isoformat(timespec="seconds")
    name = sidecar_path(Path(plan_file)).name
    step.write_json(name, sidecar.as_dict())
    return name


def read_sidecar(plan_path: str | Path) -> Sidecar:
    path = sidecar_path(plan_path)
    if not path.is_file():
        raise DeployKitError(f"{plan_path} has no sidecar ({path.name}); rebuild it with `deploykit build-trt`, "
                             "which records the TensorRT version and GPU the engine is tied to")
    data = read_json(path)
    if data.get("format") != SIDECAR_FORMAT:
        raise DeployKitError(f"{path} is not a deploykit engine sidecar (format {SIDECAR_FORMAT})")
    known = set(Sidecar.__dataclass_fields__)
    missing = [k for k in ("plan", "plan_sha256", "tensorrt", "gpu", "profile", "precision", "onnx") if k not in data]
    if missing:
        raise DeployKitError(f"{path} lacks {', '.join(missing)}")
    return Sidecar(**{k: v for k, v in data.items() if k in known})


def check_sidecar(sidecar: Sidecar, plan_path: str | Path, tensorrt_version: str, gpu_name: str,
                  compute_capability: str) -> None:
    """Refuse to load an engine built elsewhere: another TensorRT version, another GPU, or an edited plan."""
    plan_path = Path(plan_path)
    built, here = parse_version(sidecar.tensorrt)[:3], parse_version(tensorrt_version)[:3]
    if built != here:
        raise DeployKitError(
            f"{plan_path.name} was built with TensorRT {sidecar.tensorrt}, this machine has TensorRT {tensorrt_version}: "
            f"engines only load in the TensorRT version that built them; rebuild with `deploykit build-trt`"
        )
    built_gpu = sidecar.gpu or {}
    if (built_gpu.get("compute_capability") != compute_capability
            or built_gpu.get("name", "").strip() != (gpu_name or "").strip()):
        raise DeployKitError(
            f"{plan_path.name} was built for {built_gpu.get('name')} (compute capability "
            f"{built_gpu.get('compute_capability')}), this GPU is {gpu_name} ({compute_capability}): engines are tied "
            f"to the GPU that built them; rebuild on this machine with `deploykit build-trt`"
        )
    if not plan_path.is_file():
        raise DeployKitError(f"{plan_path} does not exist")
    if sha256_file(plan_path) != sidecar.plan_sha256:
        raise DeployKitError(f"{plan_path} does not match the sha256 in its sidecar (modified or replaced after the build)")
