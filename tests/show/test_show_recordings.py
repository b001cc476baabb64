"""``otelzmq show`` on real recordings: LTTng's, and a run of ``otelzmq up``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otelzmq.cli import main
from otelzmq.config import ProxyPorts
from otelzmq.show.analysis import analyze
from otelzmq.show.model import load_spans
from tests.conftest import LTTNG_FIXTURE

FIXTURE = LTTNG_FIXTURE


@pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"no LTTng recording at {FIXTURE}")
def test_lttng_recording(capsys) -> None:
    assert main(["show", "--json", str(FIXTURE)]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert summary["spans"]["total"] == 15
    assert summary["traces"]["total"] == 5
    assert [e["reason"] for e in summary["errors"]] == ["server error", "nth too large"]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("otelzmq.ctf.exporters") is None,
    reason="the CTF exporters are not installed",
)
def test_run_of_otelzmq_up(tmp_path: Path, ports: ProxyPorts, capsys) -> None:
    out = tmp_path / "run"
    port_flags = []
    for role, number in ports.as_dict().items():
        port_flags += [f"--{role}-port", str(number)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "otelzmq",
            "up",
            "--out",
            str(out),
            "--timeout",
            "90",
            *port_flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]

    assert main(["show", "--json", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["traces"] == {"total": 30, "complete": 30, "incomplete": 0}
    counts = {
        row["name"]: row["count"] for row in summary["spans"]["by_service_and_name"]
    }
    assert counts["get-nth-prime"] == 30
    assert counts["compute-nth-prime"] == 30
    assert counts["proxy-backend-to-frontend"] == 30
    assert summary["phases"]["requests"] == 30
    # Each of the six shares is rounded to 6 decimals in the JSON.
    shares = [p["share"] for p in summary["phases"]["phases"]]
    assert sum(shares) == pytest.approx(1, abs=len(shares) * 5e-7)
    assert {h["host"] for h in summary["hosts"]} == {
        "client-1",
        "client-2",
        "client-3",
        "proxy",
        "server-1",
        "server-2",
    }

    report = analyze(load_spans([str(out)]))
    for trace in report.traces.values():
        roles = {span.service for span in trace.spans}
        assert roles == {"otelzmq-client", "otelzmq-proxy", "otelzmq-server"}
    # One machine, one clock: nothing to correct.
    assert not report.clock.skew_detected
    assert report.clock.violations == 0

    # Shifted as if the hosts' clocks disagreed, the shifts are found.
    shifts = {"proxy": 5_000_000, "server-1": -8_000_000, "server-2": 50_000_000}
    skewed = analyze(
        dataclasses.replace(
            span,
            start_ns=span.start_ns + shifts.get(span.host, 0),
            end_ns=span.end_ns + shifts.get(span.host, 0),
        )
        for trace in report.traces.values()
        for span in trace.spans
    )
    assert skewed.clock.skew_detected
    for host, shift in shifts.items():
        offset = skewed.clock.hosts[host]
        assert offset.applied
        assert offset.lower_ns <= shift <= offset.upper_ns
        assert offset.lower_ns <= offset.estimate_ns <= offset.upper_ns

    assert main(["show", "--slowest", "1", str(out)]) == 0
    text = capsys.readouterr().out
    assert "30 traces" in text and "compute-nth-prime" in text
