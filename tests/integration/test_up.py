"""`otelzmq up` end to end, as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from otelzmq.client import default_sequence
from otelzmq.primes import nth_prime
from tests.conftest import host_environment, up_command

pytestmark = pytest.mark.slow

HOSTS = ["client-1", "client-2", "client-3", "proxy", "server-1", "server-2"]
RECEIVED = re.compile(r"^\[client\] Received (\d+)(?:st|nd|rd|th) prime = (\d+)$")


def run_up(tmp_path: Path, ports, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        up_command(tmp_path / "out", ports, *extra),
        capture_output=True,
        text=True,
        timeout=180,
        env=host_environment(),
        cwd=tmp_path,
    )


def test_default_run_answers_every_request(tmp_path: Path, ports) -> None:
    result = run_up(tmp_path, ports)

    assert result.returncode == 0, result.stderr
    assert "All 30 answers received" in result.stderr
    output = tmp_path / "out" / "output"
    assert sorted(p.name for p in output.iterdir()) == HOSTS
    for client in HOSTS[:3]:
        lines = (output / client / "output.log").read_text().splitlines()
        answers = [RECEIVED.match(line) for line in lines]
        received = [(int(m[1]), int(m[2])) for m in answers if m]
        assert received == [(n, nth_prime(n)) for n in default_sequence(10)]
        assert "[client] Requesting nth=1001" in lines
    proxy_log = (output / "proxy" / "output.log").read_text()
    assert "[proxy ] Binding proxy to frontend..." in proxy_log
    assert len(re.findall(r"Client client-\d connected", proxy_log)) == 3
    for server in HOSTS[4:]:
        assert (
            "[server] Received kill signal"
            in (output / server / "output.log").read_text()
        )


def test_scaled_run(tmp_path: Path, ports) -> None:
    result = run_up(
        tmp_path,
        ports,
        *("--clients", "4", "--servers", "1", "--workers", "3", "--requests", "2"),
    )

    assert result.returncode == 0, result.stderr
    assert "All 8 answers received" in result.stderr
    names = sorted(p.name for p in (tmp_path / "out" / "output").iterdir())
    assert names == [f"client-{i}" for i in range(1, 5)] + ["proxy", "server-1"]


def test_a_taken_port_is_a_clear_error(tmp_path: Path, ports) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.backend))
        squatter.listen()
        result = run_up(tmp_path, ports)

    assert result.returncode != 0
    assert f"port {ports.backend} (backend) is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _hosts_of(out: Path) -> list[int]:
    """Process ids of hosts still running with this output folder."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"otelzmq" in command and str(out).encode() in command:
            pids.append(int(proc.name))
    return pids


def _start_up(tmp_path: Path, ports, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        up_command(tmp_path / "out", ports, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=host_environment(),
        cwd=tmp_path,
    )


def _wait_for_answers(tmp_path: Path, count: int) -> None:
    log = tmp_path / "out" / "output" / "client-1" / "output.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("Received") >= count:
            return
        time.sleep(0.1)
    raise AssertionError("client-1 got no answers")


def test_ctrl_c_stops_every_host(tmp_path: Path, ports) -> None:
    # Large n values keep the run going long enough to interrupt it.
    up = _start_up(tmp_path, ports, "--requests", "500")
    _wait_for_answers(tmp_path, 2)
    assert len(_hosts_of(tmp_path / "out")) == 7  # up and its six hosts

    up.send_signal(signal.SIGINT)
    _, err = up.communicate(timeout=30)

    assert up.returncode == 130
    assert "Interrupted; stopping every host" in err
    assert _hosts_of(tmp_path / "out") == []


def test_a_crashed_host_fails_the_run_and_stops_the_others(tmp_path, ports):
    up = _start_up(tmp_path, ports, "--requests", "500")
    _wait_for_answers(tmp_path, 2)
    proxy = next(
        pid
        for pid in _hosts_of(tmp_path / "out")
        if b"proxy" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    )
    os.kill(proxy, signal.SIGKILL)
    _, err = up.communicate(timeout=60)

    assert up.returncode == 1
    assert "otelzmq up failed: proxy exited with status -9" in err
    assert _hosts_of(tmp_path / "out") == []
