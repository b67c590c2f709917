"""What the TensorRT ONNX parser accepts, from a pinned copy of onnx-tensorrt's operators.md.

The table (``data/onnx_tensorrt_10.json``) records its source, the TensorRT release it describes
(10.15), the minor release that added an operator (``since``), and TensorRT 11's differences. A
check targets one TensorRT version: the installed one when there is one, else the table's.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from ..errors import DeployKitError

TABLE_FILE = "onnx_tensorrt_10.json"


@functools.lru_cache(maxsize=1)
def support_table() -> dict:
    text = resources.files(__package__).joinpath("data", TABLE_FILE).read_text()
    return json.loads(text)


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` -> (10, 3, 0, 26); raises DeployKitError for anything else."""
    try:
        parts = tuple(int(p) for p in str(text).strip().split("."))
    except ValueError:
        parts = ()
    if not parts:
        raise DeployKitError(f"{text!r} is not a TensorRT version (expected e.g. 10.3 or 11.2.1)")
    return parts


@dataclass(frozen=True)
class TrtTarget:
    """The TensorRT version the checks are for (and whether it was installed or assumed)."""

    version: str
    assumed: bool = False

    @property
    def parts(self) -> tuple[int, ...]:
        return parse_version(self.version)

    @property
    def major(self) -> int:
        return self.parts[0]

    def at_least(self, version: str) -> bool:
        want = parse_version(version)
        have = self.parts + (0,) * max(0, len(want) - len(self.parts))
        return have[: len(want)] >= want

    @property
    def strongly_typed(self) -> bool:
        """TensorRT 11 builds every network strongly typed (no precision flags, no calibrator)."""
        return self.major >= 11

    def describe(self) -> str:
        return f"TensorRT {self.version}" + (" (assumed: TensorRT is not installed here)" if self.assumed else "")


def default_target(installed_version: str | None = None) -> TrtTarget:
    if installed_version:
        return TrtTarget(installed_version)
    return TrtTarget(support_table()["tensorrt"], assumed=True)


def check_target(target: TrtTarget) -> None:
    if target.major < 10:
        raise DeployKitError(f"{target.describe()}: deploykit supports TensorRT 10 and 11 (the pinned parser table is 10.x)")


def opset_range(target: TrtTarget) -> tuple[int, int]:
    table = support_table()
    section = table["tensorrt_11"]["opset"] if target.major >= 11 else table["opset"]
    return section["min"], section["max"]


def operator_spec(op_type: str, target: TrtTarget) -> dict | None:
    """The table row for ``op_type`` as seen by ``target`` (None when the table does not list it)."""
    table = support_table()
    spec = table["operators"].get(op_type)
    if target.major >= 11:
        t11 = table["tensorrt_11"]
        if op_type in t11["added"] and target.at_least(t11["added"][op_type]):
            spec = {**(spec or {}), "supported": True, "since": t11["added"][op_type]}
        change = t11["changed"].get(op_type)
        if spec is not None and change and target.at_least(change["since"]):
            spec = {**spec, "checks": [
                {**c, "ranks": change["input_ranks"]} if c["check"] == "input_rank" else c for c in spec.get("checks", [])
            ]}
    return spec


def unsupported_reason(op_type: str, domain: str, target: TrtTarget) -> str | None:
    """Why the parser would reject this operator outright, or None when it is supported."""
    if domain not in ("", "ai.onnx"):
        return (f"operator {domain}::{op_type} is outside the ONNX standard domain; TensorRT's parser needs a plugin "
                f"registered under that name")
    spec = operator_spec(op_type, target)
    if spec is None:
        return f"{op_type} is not listed in onnx-tensorrt's operators.md for {target.describe()}"
    if not spec["supported"]:
        note = f" ({spec['restriction']})" if spec.get("restriction") else ""
        return f"{op_type} is not supported by the TensorRT ONNX parser{note}"
    since = spec.get("since")
    if since and not target.at_least(since):
        return f"{op_type} needs TensorRT >= {since} ({target.describe()})"
    return None
