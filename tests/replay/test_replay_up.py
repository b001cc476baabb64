"""Replay what a real ``otelzmq up`` run recorded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from otelzmq.recording import read_recording
from tests.conftest import host_environment, port_flags
from tests.replay.conftest import run_replay
from tests.replay.receivers import GrpcReceiver

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("otelzmq.ctf.exporters") is None,
        reason="needs the CTF exporters (otelzmq.ctf.exporters)",
    ),
]


def test_replay_of_an_up_run_is_identical(
    tmp_path: Path, ports, grpc_receiver: GrpcReceiver
) -> None:
    out = tmp_path / "out"
    up = subprocess.run(
        [sys.executable, "-m", "otelzmq", "up", "--out", str(out)]
        + ["--clients", "2", "--servers", "1", "--requests", "3"]
        + port_flags(ports),
        capture_output=True,
        text=True,
        timeout=180,
        env=host_environment(),
        cwd=tmp_path,
    )
    assert up.returncode == 0, up.stderr
    traces = out / "ctf-traces"

    result = run_replay(str(traces), "--endpoint", grpc_receiver.endpoint)

    assert result.returncode == 0, result.stdout + result.stderr
    recorded = {"spans": [], "metrics": [], "logs": []}
    hosts = set()
    for record in read_recording(traces, strict=True):
        recorded[record.signal].append(record.message)
        hosts.add(record.host)
    assert hosts == {"client-1", "client-2", "proxy", "server-1"}
    for signal, messages in recorded.items():
        assert grpc_receiver.received.resources(signal) == messages, signal
    names = {
        span.name
        for resource in recorded["spans"]
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert {"get-nth-prime", "get-nth-prime-attempt"} <= names
    assert "proxy-frontend-to-backend" in names
