"""Machine and process figures from psutil (``GET /api/v1/metrics/system``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil


def system_figures(data_dir: Path, uptime: float) -> dict[str, Any]:
    """CPU, memory, the data directory's disk, network totals, load average, this
    process's connections and the server's uptime — measured now.

    ``cpu_usage`` is the machine's CPU percent since the previous call (the first call in a
    process compares against the process start).
    """
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(data_dir))
    network = psutil.net_io_counters()
    one, five, fifteen = os.getloadavg()
    process = psutil.Process()
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_usage": float(psutil.cpu_percent(interval=None)),
        "cpu_count": psutil.cpu_count() or 0,
        "memory_usage": memory.total - memory.available,
        "memory_total": memory.total,
        "disk_usage": disk.used,
        "disk_total": disk.total,
        "network_rx_bytes": network.bytes_recv if network is not None else 0,
        "network_tx_bytes": network.bytes_sent if network is not None else 0,
        "load_average": {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)},
        "active_connections": _connections(process),
        "uptime": max(0, int(uptime)),
        "process": {
            "pid": process.pid,
            "memory_rss": process.memory_info().rss,
            "threads": process.num_threads(),
        },
    }


def _connections(process: psutil.Process) -> int:
    """TCP connections of this process that are established."""
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return 0
    return sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED)
