"""Run the compose topology's own commands as local processes.

No Docker engine is available, so this does what the engine would do with
the resolved compose file, minus the containers: every service's
entrypoint and command run with its environment, in the order its
depends_on conditions give (proxy, its healthcheck, the hosts, then the
replay). Only what containers provide is substituted: the service names
``proxy`` and ``collector`` become loopback addresses (the collector being
a test OTLP receiver), the ``/out`` mount a temporary folder, and the
ports free ones so the test can run beside anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import free_port

from ..replay.receivers import GrpcReceiver
from .helpers import DEPLOY, ComposeConfig, clean_environment

pytestmark = pytest.mark.slow

HOSTS = ("proxy", "server-1", "server-2", "client-1", "client-2", "client-3")
SERVERS = HOSTS[1:3]
CLIENTS = HOSTS[3:]
PORT_VARIABLES = (
    "OTELZMQ_FRONTEND_PORT",
    "OTELZMQ_BACKEND_PORT",
    "OTELZMQ_CONNECTOR_PORT",
    "OTELZMQ_TERMINATOR_PORT",
)
RUN_DEADLINE_SECONDS = 120.0


class LocalCompose:
    """Starts resolved compose services as processes on this machine."""

    def __init__(
        self, services: dict[str, Any], tmp_path: Path, collector: str
    ) -> None:
        self.services = services
        self.tmp_path = tmp_path
        self.out = tmp_path / "out"
        self.out.mkdir()
        self.collector = urlsplit(collector).netloc
        self.ports = {variable: str(free_port()) for variable in PORT_VARIABLES}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.bin_dir = tmp_path / "bin"
        self._install_image_commands()

    def _install_image_commands(self) -> None:
        """Stand in for the image's /usr/local/bin."""
        self.bin_dir.mkdir()
        otelzmq = self.bin_dir / "otelzmq"
        otelzmq.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m otelzmq "$@"\n')
        otelzmq.chmod(0o755)
        (self.bin_dir / "with-output-log").symlink_to(DEPLOY / "with-output-log.sh")
        healthcheck = self.bin_dir / "otelzmq-healthcheck"
        healthcheck.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{DEPLOY / "healthcheck.py"}" "$@"\n'
        )
        healthcheck.chmod(0o755)

    def substitute(self, text: str) -> str:
        """Map the /out mount and the collector's address onto this machine."""
        if text.startswith("/out"):
            return str(self.out) + text[len("/out") :]
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and parts.hostname == "collector":
            return urlunsplit(parts._replace(netloc=self.collector))
        return text

    def environment(self, name: str) -> dict[str, str]:
        service = self.services[name]
        own = {
            key: self.substitute(str(value))
            for key, value in service.get("environment", {}).items()
        }
        # The proxy's address on the compose network, and its bind address.
        for key in ("OTELZMQ_PROXY_HOST", "OTELZMQ_BIND_ADDRESS"):
            if key in own:
                own[key] = "127.0.0.1"
        env = clean_environment() | own | self.ports
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(self, name: str) -> None:
        service = self.services[name]
        command = [*service.get("entrypoint", ["otelzmq"]), *service["command"]]
        with (self.tmp_path / f"{name}.stderr").open("wb") as stderr:
            self.processes[name] = subprocess.Popen(
                [self.substitute(word) for word in command],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.environment(name),
                cwd=self.tmp_path,
            )

    def healthy(self, name: str) -> bool:
        """Run the service's own healthcheck command, as the engine would."""
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        probe = subprocess.run(
            test[1:],
            capture_output=True,
            env=self.environment(name),
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            return False
        if self.services[name]["command"][0] == "server":
            # Here every host shares one network namespace, so the check
            # would also see the other servers' connections; look at this
            # server's own sockets too, as its container would.
            return self._ports_wanted(name) <= established_ports(
                self.processes[name].pid
            )
        return True

    def _ports_wanted(self, name: str) -> set[int]:
        return {
            int(self.ports[variable])
            for variable in ("OTELZMQ_BACKEND_PORT", "OTELZMQ_TERMINATOR_PORT")
        }

    def wait_healthy(self, name: str, deadline: float) -> None:
        """Like ``service_healthy``: the healthcheck passes."""
        while not self.healthy(name):
            assert self.processes[name].poll() is None, self.stderr(name)
            assert time.monotonic() < deadline, f"{name} never became healthy"
            time.sleep(0.2)

    def stderr(self, name: str) -> str:
        return (self.tmp_path / f"{name}.stderr").read_text()

    def wait_completed(self, name: str, deadline: float) -> None:
        """Like ``service_completed_successfully``: exited, with status 0."""
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            status = self.processes[name].wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} is still running:\n{self.stderr(name)}")
        assert status == 0, self.stderr(name)

    def run_topology(self) -> None:
        deadline = time.monotonic() + RUN_DEADLINE_SECONDS

        # depends_on: servers wait for the proxy to be healthy, clients for
        # the proxy and both servers.
        self.start("proxy")
        self.wait_healthy("proxy", deadline)
        for name in SERVERS:
            self.start(name)
        for name in SERVERS:
            self.wait_healthy(name, deadline)
        for name in CLIENTS:
            self.start(name)

        # Every host ends on its own: clients after their requests, the
        # proxy after the expected clients left, servers on its KILL.
        for name in HOSTS:
            self.wait_completed(name, deadline)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids = [pid]
    for current in pids:
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pids.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue  # the task ended meanwhile
    return pids


def established_ports(pid: int) -> set[int]:
    """Remote ports of the established TCP sockets of a process tree."""
    inodes = set()
    for member in process_tree(pid):
        for fd in Path(f"/proc/{member}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "01" and fields[9] in inodes:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def collector() -> Iterator[GrpcReceiver]:
    with GrpcReceiver() as receiver:
        yield receiver


@pytest.fixture
def local_compose(tmp_path: Path, collector: GrpcReceiver) -> Iterator[Any]:
    started: list[LocalCompose] = []

    def make(services: dict[str, Any]) -> LocalCompose:
        compose = LocalCompose(services, tmp_path, collector.endpoint)
        started.append(compose)
        return compose

    yield make
    for compose in started:
        compose.stop_all()


def instance_ids(resources: list[Any]) -> set[str]:
    ids = set()
    for resource in resources:
        for attribute in resource.resource.attributes:
            if attribute.key == "service.instance.id":
                ids.add(attribute.value.string_value)
    return ids


def span_names(resources: list[Any]) -> list[str]:
    return [
        span.name
        for resource in resources
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def assert_output_logs(out: Path) -> None:
    for name in HOSTS:
        assert (out / "output" / name / "output.log").is_file(), name
    for client in CLIENTS:
        lines = (out / "output" / client / "output.log").read_text().splitlines()
        received = [line for line in lines if line.startswith("[client] Received")]
        assert len(received) == 10
    proxy_lines = (out / "output" / "proxy" / "output.log").read_text()
    assert proxy_lines.count("connected (") >= len(CLIENTS)


def test_recorded_run_then_replay_reaches_the_collector(
    compose_config: ComposeConfig, local_compose: Any, collector: GrpcReceiver
) -> None:
    services = compose_config("--profile", "replay")["services"]
    compose = local_compose(services)

    compose.run_topology()

    assert_output_logs(compose.out)
    for name in HOSTS:
        assert (compose.out / "ctf-traces" / name).is_dir(), name
    assert collector.received.request_count() == 0

    # replay: depends_on every host service_completed_successfully.
    compose.start("replay")
    compose.wait_completed("replay", time.monotonic() + RUN_DEADLINE_SECONDS)

    spans = collector.received.resources("spans")
    assert instance_ids(spans) == set(HOSTS)
    assert span_names(spans).count("get-nth-prime") == 10 * len(CLIENTS)
    assert instance_ids(collector.received.resources("metrics")) == set(HOSTS)


def test_live_env_file_sends_otlp_while_the_hosts_run(
    compose_config: ComposeConfig, local_compose: Any, collector: GrpcReceiver
) -> None:
    live = compose_config("--env-file", str(DEPLOY / "live.env"))["services"]
    compose = local_compose(live)

    compose.run_topology()

    assert_output_logs(compose.out)
    assert not (compose.out / "ctf-traces").exists()
    spans = collector.received.resources("spans")
    assert instance_ids(spans) == set(HOSTS)
    assert span_names(spans).count("get-nth-prime") == 10 * len(CLIENTS)
    assert instance_ids(collector.received.resources("metrics")) == set(HOSTS)
    assert instance_ids(collector.received.resources("logs")) >= set(CLIENTS)
