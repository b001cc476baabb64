"""Benchmark the pure-Python CTF reader: MB/s and events/s decoded.

Builds a trace of resource_spans events (see ``bench_replay.py``) and times,
each the best of a few runs:

* ``read_events``: CTF decoding alone (headers, contexts, payload slices);
* ``read_recording``: the same plus parsing every payload as OTLP;
* babeltrace2 with its dummy sink, when it is installed, for comparison.

Usage: python bench/bench_reader.py [--events N] [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench_replay import build_trace
from otelzmq.ctf.reader import ReadStats, read_events
from otelzmq.recording import read_recording


def _best(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _drain_events(trace: Path, stats: ReadStats | None = None) -> None:
    for _event in read_events(trace, strict=True, stats=stats):
        pass


def _drain_records(trace: Path) -> None:
    for _record in read_recording(trace, strict=True):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    try:
        trace = work / "trace"
        build_trace(trace, args.events)
        stats = ReadStats()
        _drain_events(trace, stats)
        megabytes = stats.bytes / 1e6
        print(
            f"trace: {stats.events} events in {stats.packets} packets, "
            f"{megabytes:.1f} MB of stream content"
        )
        rows = [
            (
                "read_events (CTF only)",
                _best(args.repeat, lambda: _drain_events(trace)),
            ),
            (
                "read_recording (+ OTLP)",
                _best(args.repeat, lambda: _drain_records(trace)),
            ),
        ]
        if shutil.which("babeltrace2"):
            command = ["babeltrace2", "--output-format=dummy", str(trace)]
            rows.append(
                (
                    "babeltrace2 dummy sink",
                    _best(args.repeat, lambda: subprocess.run(command, check=True)),
                )
            )
        print(f"{'reader':26} {'s':>6} {'MB/s':>7} {'events/s':>9}")
        for label, seconds in rows:
            print(
                f"{label:26} {seconds:6.3f} {megabytes / seconds:7.1f} "
                f"{stats.events / seconds:9.0f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
