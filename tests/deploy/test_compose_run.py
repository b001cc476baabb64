"""Run the compose topology's own commands as local processes.

No Docker engine is available, so this does what the engine would do with
the resolved compose file, minus the containers: every host service's
entrypoint and command run with its environment, in the order its
depends_on conditions give (proxy, its healthcheck, then the others). Only
what a container provides is substituted: the service name ``proxy`` and
the ``/out`` mount become 127.0.0.1 and a temporary folder, and the ports
become free ones so the test can run beside anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import DEPLOY, ComposeConfig, clean_environment, free_port

pytestmark = pytest.mark.slow

HOSTS = ("proxy", "server-1", "server-2", "client-1", "client-2", "client-3")
PORT_VARIABLES = (
    "OTELZMQ_FRONTEND_PORT",
    "OTELZMQ_BACKEND_PORT",
    "OTELZMQ_CONNECTOR_PORT",
    "OTELZMQ_TERMINATOR_PORT",
)
RUN_DEADLINE_SECONDS = 120.0


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    """A bin folder standing in for the image's /usr/local/bin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    otelzmq = bin_dir / "otelzmq"
    otelzmq.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m otelzmq "$@"\n')
    otelzmq.chmod(0o755)
    (bin_dir / "with-output-log").symlink_to(DEPLOY / "with-output-log.sh")
    return bin_dir


@pytest.fixture
def started() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_compose_commands_run_the_topology_to_completion(
    compose_config: ComposeConfig,
    image_path: Path,
    tmp_path: Path,
    started: dict[str, subprocess.Popen[bytes]],
) -> None:
    services = compose_config()["services"]
    out = tmp_path / "out"
    out.mkdir()
    ports = {variable: str(free_port()) for variable in PORT_VARIABLES}

    def launch(name: str) -> None:
        service = services[name]
        environment = {key: str(value) for key, value in service["environment"].items()}
        environment["OTELZMQ_OUT"] = str(out)
        if "OTELZMQ_PROXY_HOST" in environment:
            environment["OTELZMQ_PROXY_HOST"] = "127.0.0.1"
        if "OTELZMQ_BIND_ADDRESS" in environment:
            environment["OTELZMQ_BIND_ADDRESS"] = "127.0.0.1"
        env = clean_environment() | environment | ports
        env["PATH"] = f"{image_path}{os.pathsep}{env.get('PATH', '')}"
        with (tmp_path / f"{name}.stderr").open("wb") as stderr:
            started[name] = subprocess.Popen(
                [*service["entrypoint"], *service["command"]],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                cwd=tmp_path,
            )

    def healthy() -> bool:
        test = services["proxy"]["healthcheck"]["test"]
        probe = subprocess.run(
            [sys.executable, *test[2:]],
            capture_output=True,
            env=clean_environment() | ports,
            timeout=30,
            check=False,
        )
        return probe.returncode == 0

    deadline = time.monotonic() + RUN_DEADLINE_SECONDS

    # depends_on: proxy service_healthy, before any server or client.
    launch("proxy")
    while not healthy():
        assert started["proxy"].poll() is None, (tmp_path / "proxy.stderr").read_text()
        assert time.monotonic() < deadline, "the proxy never became healthy"
        time.sleep(0.2)
    for name in HOSTS[1:]:
        launch(name)

    # Every host ends on its own: clients after their requests, the proxy
    # after the three expected clients left, servers on the proxy's KILL.
    for name in HOSTS:
        remaining = max(deadline - time.monotonic(), 1.0)
        status = started[name].wait(timeout=remaining)
        assert status == 0, (tmp_path / f"{name}.stderr").read_text()

    for name in HOSTS:
        log = out / "output" / name / "output.log"
        assert log.is_file(), f"no output.log for {name}"
        assert (out / "ctf-traces" / name).is_dir(), f"no CTF traces for {name}"
    for client in HOSTS[3:]:
        lines = (out / "output" / client / "output.log").read_text().splitlines()
        received = [line for line in lines if line.startswith("[client] Received")]
        assert len(received) == 10
    proxy_lines = (out / "output" / "proxy" / "output.log").read_text()
    assert proxy_lines.count("connected (") >= 3
