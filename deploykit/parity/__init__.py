"""Parity: error metrics (metrics.py) and the one engine that compares a candidate with a reference (engine.py)."""

from .engine import CaseResult, ParityInput, ParityResult, Recorded, compare_runners, inputs_for, record
from .metrics import OutputMetrics, compare_output, compare_outputs, error_stats

__all__ = ["CaseResult", "OutputMetrics", "ParityInput", "ParityResult", "Recorded", "compare_output",
           "compare_outputs", "compare_runners", "error_stats", "inputs_for", "record"]
