"""Peak RSS of parsing one KServe v2 infer body, against the body's size (issue 24: JSON cost ~12x).

    python benchmarks/body_memory.py            # JSON and binary bodies of 1, 4, 16 MiB, one process each

Each size runs in a fresh process: the peak (VmHWM) minus the RSS before the body was built, per body byte.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":")) / 1024


def one(kind: str, megabytes: float) -> dict:
    from deploykit.serve.protocol import parse_infer_request

    if kind == "json":  # "0.5, " is the cheapest number to send and the dearest to parse (one float object each)
        count = int(megabytes * 2 ** 20 / 5)
        body = (b'{"inputs": [{"name": "x", "shape": [%d], "datatype": "FP32", "data": [' % count
                + b"0.5, " * (count - 1) + b"0.5]}]}")
        header_length = None
    else:
        count = int(megabytes * 2 ** 20 / 4)
        header = json.dumps({"inputs": [{"name": "x", "shape": [count], "datatype": "FP32",
                                         "parameters": {"binary_data_size": count * 4}}]}).encode()
        body, header_length = header + np.zeros(count, np.float32).tobytes(), len(header)
    size = len(body) / 2 ** 20
    base = _status_mb("VmRSS")  # the body itself is in the base: what parsing adds on top of it
    parse_infer_request(body, header_length, {"x": np.dtype(np.float32)})
    peak = _status_mb("VmHWM")  # not ru_maxrss: Linux carries that over exec from the parent (pytest)
    return {"kind": kind, "body_mb": round(size, 1), "peak_over_base_mb": round(peak - base, 1),
            "x_body": round((peak - base) / size, 1)}


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(one(sys.argv[1], float(sys.argv[2]))))
    else:
        for kind in ("json", "binary"):
            for mb in (1, 4, 16):
                subprocess.run([sys.executable, __file__, kind, str(mb)], check=True)
