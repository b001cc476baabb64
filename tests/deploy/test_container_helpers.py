"""The two commands the compose file runs besides otelzmq itself: the
output-log wrapper every host starts under, and the proxy's healthcheck."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import DEPLOY, clean_environment, free_port

WRAPPER = DEPLOY / "with-output-log.sh"
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
            listener = socket.create_server(("127.0.0.1", 0))
            sockets[variable] = listener
        yield sockets
    finally:
        for listener in sockets.values():
            listener.close()


def run_healthcheck(
    compose_source: dict[str, object], ports: dict[str, int]
) -> subprocess.CompletedProcess[str]:
    test = compose_source["services"]["proxy"]["healthcheck"]["test"]  # type: ignore[index]
    assert test[:2] == ["CMD", "python"]
    env = clean_environment() | {name: str(port) for name, port in ports.items()}
    return subprocess.run(
        [sys.executable, *test[2:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_healthcheck_passes_when_all_four_ports_listen(
    compose_source: dict[str, object], listeners: dict[str, socket.socket]
) -> None:
    ports = {name: s.getsockname()[1] for name, s in listeners.items()}
    result = run_healthcheck(compose_source, ports)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("closed", PORT_VARIABLES)
def test_healthcheck_fails_while_one_port_is_closed(
    compose_source: dict[str, object],
    listeners: dict[str, socket.socket],
    closed: str,
) -> None:
    ports = {name: s.getsockname()[1] for name, s in listeners.items()}
    listeners[closed].close()
    ports[closed] = free_port()
    result = run_healthcheck(compose_source, ports)
    assert result.returncode != 0
    assert "ConnectionRefusedError" in result.stderr


def test_healthcheck_defaults_to_the_original_ports(
    compose_source: dict[str, object],
) -> None:
    test = compose_source["services"]["proxy"]["healthcheck"]["test"]  # type: ignore[index]
    for port in ("5559", "5560", "5561", "5562"):
        assert port in test[-1]
