"""`python -m bench.spike`: a pyz server's threads and memory before, during and after a
spike of connections that never log in (the figures are in docs/design.md).

It starts `lanchat.pyz server` on a free port of 127.0.0.1, opens `--connections`
sockets that read nothing and send nothing, closes them all, and prints Threads and
VmRSS of the server (from /proc/PID/status) at each step and for `--after` seconds
after; `--rounds` repeats that on the same server. Extra server options follow `--`,
e.g. `-- --worker-idle-timeout 5`. Linux only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from bench import procstat
from bench.runner import HOST, ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def report(label: str, pid: int) -> procstat.Sample:
    """Print one sample of the server, labelled, and return it."""
    now = procstat.sample(pid)
    print(f"{label:>22}  threads {now.threads:5d}  RSS {now.rss_bytes / MIB:7.1f} MiB", flush=True)
    return now


def wait_for_threads(pid: int, at_least: int, timeout: float) -> None:
    """Wait until the server runs at least this many threads (every reader has started)."""
    deadline = time.monotonic() + timeout
    while procstat.sample(pid).threads < at_least and time.monotonic() < deadline:
        time.sleep(0.1)


def spike(pid: int, port: int, connections: int, after: float) -> None:
    """Open and close the connections; sample before, during and after."""
    baseline = report("before", pid)
    sockets: List[socket.socket] = []
    try:
        for _ in range(connections):
            sockets.append(socket.create_connection((HOST, port), timeout=10))
        wait_for_threads(pid, baseline.threads + connections, timeout=60)
        report(f"{connections} connected", pid)
    finally:
        for sock in sockets:
            sock.close()
    closed = time.monotonic()
    for mark in (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120):
        if mark > after:
            break
        time.sleep(max(0.0, closed + mark - time.monotonic()))
        report(f"{mark} s after closing", pid)


def main(argv: Optional[List[str]] = None) -> int:
    """Run one spike against the built pyz; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.spike", description=__doc__)
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "lanchat.pyz")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--after", type=float, default=30.0, help="seconds to watch after")
    parser.add_argument("--rounds", type=int, default=1, help="spikes, one after the other")
    parser.add_argument("server_args", nargs="*", help="more server options, after --")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lanchat-spike-") as workdir:
        server = ServerProcess(
            [
                sys.executable,
                str(args.pyz),
                "server",
                "--bind",
                HOST,
                "--port",
                str(free_port()),
                "--no-discovery",
                "--no-history",
                "--log-level",
                "warning",
                "--max-clients",
                str(args.connections + 100),
                *args.server_args,
            ],
            Path(workdir),
        )
        server.start()
        try:
            time.sleep(1.0)  # let the interpreter settle before the baseline sample
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}", flush=True)
                spike(server.pid, server.port, args.connections, args.after)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
