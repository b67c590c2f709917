"""One problem found before a build: where it is, what is wrong, what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    where: str    # a node name, an input ("input C3 axis 2"), a file, or "model"
    check: str    # which check found it: operator, attribute, qdq, pooling, resize, opset, profile, dims, precision
    message: str  # what is wrong, in one line
    fix: str      # what to do

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return f"{self.where}: {self.message} -> {self.fix}"
