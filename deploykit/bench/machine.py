"""What the numbers were measured on: CPU model, cores, memory, load, library versions.

Latency means little without the machine and its load, so every result file carries this.
"""

from __future__ import annotations

import os
import platform
import subprocess


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _cpu_flags(fields: dict) -> list[str]:
    # the INT8 kernels onnxruntime picks depend on these: VNNI (avx512_vnni / avx_vnni) or AMX accumulate
    # u8*s8 in int32; plain AVX2 / AVX-512BW use VPMADDUBSW (int16 pair sums; calibration/ort_int8.py)
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
    flags = set(fields.get("Flags", "").split())
    return [f for f in wanted if f in flags]


def machine_info() -> dict:
    fields = _lscpu()
    sockets = int(fields.get("Socket(s)", 0) or 0)
    per_socket = int(fields.get("Core(s) per socket", 0) or 0)
    return {
        "cpu": fields.get("Model name") or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "physical_cores": sockets * per_socket or None,
        "threads_per_core": int(fields.get("Thread(s) per core", 0) or 0) or None,
        "cpu_flags": _cpu_flags(fields),
        "hypervisor": fields.get("Hypervisor vendor"),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


