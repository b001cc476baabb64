"""The two helpers the image adds to otelzmq: the output-log wrapper every
host starts under, and the proxy and server healthchecks."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otelzmq.config import (
    DEFAULT_BACKEND_PORT,
    DEFAULT_CONNECTOR_PORT,
    DEFAULT_FRONTEND_PORT,
    DEFAULT_TERMINATOR_PORT,
)
from tests.conftest import free_port

from .helpers import DEPLOY, clean_environment

WRAPPER = DEPLOY / "with-output-log.sh"
HEALTHCHECK = DEPLOY / "healthcheck.py"
PORT_VARIABLES = (
    "OTELZMQ_FRONTEND_PORT",
    "OTELZMQ_BACKEND_PORT",
    "OTELZMQ_CONNECTOR_PORT",
    "OTELZMQ_TERMINATOR_PORT",
)


@pytest.fixture(autouse=True)
def needs_bash() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")


def run_wrapped(
    code: str, out: Path, name: str | None, **kwargs: object
) -> subprocess.Popen[str]:
    env = clean_environment() | {"OTELZMQ_OUT": str(out), "HOSTNAME": "box-1"}
    if name is not None:
        env["OTELZMQ_HOST_NAME"] = name
    return subprocess.Popen(
        [str(WRAPPER), sys.executable, "-u", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def test_wrapper_copies_stdout_and_keeps_the_exit_status(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "print('[client] Connecting to the proxy')\n"
        "print('[client] Received 1th prime = 2')\n"
        "print('a warning', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    process = run_wrapped(code, tmp_path, "client-1")
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 3
    expected = "[client] Connecting to the proxy\n[client] Received 1th prime = 2\n"
    assert stdout == expected
    assert (tmp_path / "output" / "client-1" / "output.log").read_text() == expected
    assert "a warning" in stderr


def test_wrapper_names_unnamed_replicas_after_the_container(tmp_path: Path) -> None:
    code = "import os; print(os.environ['OTELZMQ_HOST_NAME'])"
    process = run_wrapped(code, tmp_path, None)
    stdout, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    assert stdout == "box-1\n"
    assert (tmp_path / "output" / "box-1" / "output.log").read_text() == "box-1\n"


def test_wrapper_passes_sigterm_to_the_host(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    print('[server] Received kill signal'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready')\n"
        "time.sleep(60)\n"
    )
    process = run_wrapped(code, tmp_path, "server-1")
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"

    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    assert rest == "[server] Received kill signal\n"
    log = (tmp_path / "output" / "server-1" / "output.log").read_text()
    assert log == "ready\n[server] Received kill signal\n"


def test_wrapper_rejects_a_missing_command() -> None:
    result = subprocess.run(
        [str(WRAPPER)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


@pytest.fixture
def listeners() -> Iterator[dict[str, socket.socket]]:
    """Four listening sockets standing in for the proxy's, on free ports."""
    sockets: dict[str, socket.socket] = {}
    try:
        for variable in PORT_VARIABLES:
            sockets[variable] = socket.create_server(("127.0.0.1", 0))
        yield sockets
    finally:
        for listener in sockets.values():
            listener.close()


def listener_ports(listeners: dict[str, socket.socket]) -> dict[str, int]:
    return {name: s.getsockname()[1] for name, s in listeners.items()}


def run_healthcheck(
    role: str, ports: dict[str, int], **extra: str
) -> subprocess.CompletedProcess[str]:
    env = clean_environment() | {name: str(port) for name, port in ports.items()}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), role],
        capture_output=True,
        text=True,
        env=env | extra,
        timeout=30,
        check=False,
    )


def test_proxy_is_healthy_when_all_four_ports_listen(
    listeners: dict[str, socket.socket],
) -> None:
    result = run_healthcheck("proxy", listener_ports(listeners))
    assert result.returncode == 0, result.stdout
    assert "all four proxy ports" in result.stdout


def test_proxy_check_uses_a_specific_bind_address(
    listeners: dict[str, socket.socket],
) -> None:
    ports = listener_ports(listeners)
    on_any = run_healthcheck("proxy", ports, OTELZMQ_BIND_ADDRESS="0.0.0.0")
    assert on_any.returncode == 0
    on_loopback = run_healthcheck("proxy", ports, OTELZMQ_BIND_ADDRESS="127.0.0.1")
    assert on_loopback.returncode == 0
    elsewhere = run_healthcheck("proxy", ports, OTELZMQ_BIND_ADDRESS="127.0.0.2")
    assert elsewhere.returncode == 1


@pytest.mark.parametrize("closed", PORT_VARIABLES)
def test_proxy_is_unhealthy_while_one_port_is_closed(
    listeners: dict[str, socket.socket], closed: str
) -> None:
    ports = listener_ports(listeners)
    listeners[closed].close()
    ports[closed] = free_port()

    result = run_healthcheck("proxy", ports)

    assert result.returncode == 1
    role = closed.removeprefix("OTELZMQ_").removesuffix("_PORT").lower()
    assert result.stdout.startswith(f"{role} port 127.0.0.1:{ports[closed]}")


@pytest.mark.parametrize(
    ("connected", "healthy"),
    [
        ((), False),
        (("OTELZMQ_BACKEND_PORT",), False),
        (("OTELZMQ_TERMINATOR_PORT",), False),
        (("OTELZMQ_BACKEND_PORT", "OTELZMQ_TERMINATOR_PORT"), True),
    ],
)
def test_server_is_healthy_once_connected_to_backend_and_terminator(
    listeners: dict[str, socket.socket], connected: tuple[str, ...], healthy: bool
) -> None:
    ports = listener_ports(listeners)
    clients = [socket.create_connection(("127.0.0.1", ports[n])) for n in connected]
    accepted = [listeners[name].accept()[0] for name in connected]
    try:
        result = run_healthcheck("server", ports)
    finally:
        for sock in clients + accepted:
            sock.close()

    assert result.returncode == (0 if healthy else 1), result.stdout
    if not healthy:
        assert result.stdout.startswith("not connected to the proxy's")


def test_healthcheck_rejects_an_unknown_role() -> None:
    result = run_healthcheck("client", {})
    assert result.returncode == 2
    assert result.stdout.startswith("usage: otelzmq-healthcheck")


def test_healthcheck_defaults_to_the_original_ports() -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        import healthcheck
    finally:
        sys.path.remove(str(DEPLOY))
    assert healthcheck.DEFAULT_PORTS == {
        "FRONTEND": DEFAULT_FRONTEND_PORT,
        "BACKEND": DEFAULT_BACKEND_PORT,
        "CONNECTOR": DEFAULT_CONNECTOR_PORT,
        "TERMINATOR": DEFAULT_TERMINATOR_PORT,
    }
