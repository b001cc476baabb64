"""Wall time of the default ``otelzmq up``, recorded and not recorded.

    python bench/bench_up.py [--runs N]

Runs the default topology (1 proxy, 2 servers x 2 workers, 3 clients x 10
requests) several times on free ports, with CTF recording on (the default)
and with every exporter off, and prints the median and spread of each and
their ratio. The original system's whole run took about 2 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def run_once(exporters: str) -> float:
    ports = free_ports(4)
    flags = []
    roles = ("frontend", "backend", "connector", "terminator")
    for role, number in zip(roles, ports, strict=True):
        flags += [f"--{role}-port", str(number)]
    env = dict(os.environ)
    for signal in ("TRACES", "METRICS", "LOGS"):
        env[f"OTEL_{signal}_EXPORTER"] = exporters
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "otelzmq", "up", "--out", out, *flags],
            check=True,
            capture_output=True,
            env=env,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    results: dict[str, list[float]] = {"ctf": [], "none": []}
    for _ in range(args.runs):  # interleaved, so both see the same noise
        for exporters in results:
            results[exporters].append(run_once(exporters))

    for exporters, times in results.items():
        print(
            f"exporters={exporters:<5} median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)"
        )
    ratio = statistics.median(results["ctf"]) / statistics.median(results["none"])
    print(f"recording costs {ratio:.2f}x the unrecorded run")


if __name__ == "__main__":
    main()
