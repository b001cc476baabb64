"""Fixtures shared by the whole suite: free ports and host processes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelzmq.config import ProxyPorts

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
LTTNG_FIXTURE = FIXTURES / "lttng-otel"


#: Ports tests choose from: below Linux's ephemeral range (32768 and up),
#: so that no outgoing connection of another test takes one meanwhile.
_TEST_PORTS = range(20_000, 32_000)


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    while True:
        number = random.choice(_TEST_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", number))
            except OSError:
                continue
            return number


@pytest.fixture
def ports() -> ProxyPorts:
    """Four free ports for a proxy of this test's own."""
    return ProxyPorts(*(free_port() for _ in range(4)))


def port_flags(ports: ProxyPorts) -> list[str]:
    flags = []
    for role, number in ports.as_dict().items():
        flags += [f"--{role}-port", str(number)]
    return flags


def up_command(out: Path, ports: ProxyPorts, *extra: str) -> list[str]:
    """The command line of ``otelzmq up`` on ``ports``, writing to ``out``."""
    return [
        sys.executable,
        "-m",
        "otelzmq",
        "up",
        "--out",
        str(out),
        *port_flags(ports),
        *extra,
    ]


def host_environment(**extra: str) -> dict[str, str]:
    """The environment of a host started by a test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELZMQ_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


class Hosts:
    """Starts otelzmq hosts as processes and stops whatever is left."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self.processes: list[subprocess.Popen[str]] = []

    def start(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "otelzmq", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or host_environment(),
            cwd=self._tmp_path,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    started = Hosts(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def wait_for_port(
    number: int,
    process: subprocess.Popen[str] | None = None,
    timeout: float = 15.0,
) -> None:
    """Wait until something listens on 127.0.0.1:number.

    Fails at once, with its error output, if ``process`` (the host meant to
    listen there) exits first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(
                f"the host exited with status {process.returncode} before "
                f"listening on port {number}:\n{err}"
            )
        try:
            with socket.create_connection(("127.0.0.1", number), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {number} after {timeout} s")
