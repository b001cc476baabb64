"""Hosts started one by one: shutdown rules, faults and signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest
import zmq

from tests.babeltrace import decode
from tests.conftest import port_flags, wait_for_port

pytestmark = pytest.mark.slow


def start_proxy(hosts, ports, *extra: str) -> subprocess.Popen[str]:
    proxy = hosts.start("proxy", *port_flags(ports), *extra)
    wait_for_port(ports.frontend, proxy)
    return proxy


def start_client(hosts, ports, name: str, *extra: str) -> subprocess.Popen[str]:
    return hosts.start("client", "--name", name, *port_flags(ports), *extra)


def test_proxy_waits_for_late_clients(hosts, ports) -> None:
    proxy = start_proxy(hosts, ports, "--expect-clients", "2")
    server = hosts.start("server", *port_flags(ports))
    early = start_client(hosts, ports, "early", "--requests", "1")
    assert early.wait(30) == 0

    # The first client has come and gone; one more is expected.
    time.sleep(1.0)
    assert proxy.poll() is None
    late = start_client(hosts, ports, "late", "--requests", "2")
    out, _ = late.communicate(timeout=30)

    assert late.returncode == 0
    assert "Received 1001st prime = 7927" in out
    assert proxy.wait(15) == 0
    assert server.wait(15) == 0


def test_idle_grace_stops_the_proxy_without_an_expected_count(hosts, ports) -> None:
    proxy = start_proxy(hosts, ports, "--idle-grace", "1")
    hosts.start("server", *port_flags(ports))
    assert start_client(hosts, ports, "only", "--requests", "1").wait(30) == 0

    out, _ = proxy.communicate(timeout=15)
    assert proxy.returncode == 0
    assert "Sent kill signal" in out


def test_a_client_killed_without_disconnect_is_forgotten(
    hosts, ports, tmp_path
) -> None:
    proxy = start_proxy(
        hosts, ports, "--expect-clients", "1", "--heartbeat-timeout", "1.5"
    )
    hosts.start("server", *port_flags(ports))
    # Large n values keep the client busy long enough to be killed mid-run.
    client = start_client(
        hosts, ports, "doomed", "--nth", *["3000000"] * 50, "--timeout", "30"
    )
    time.sleep(3.0)
    client.send_signal(signal.SIGKILL)
    client.wait(5)

    # What the client recorded before it died is still readable.
    events = decode(tmp_path / "out" / "ctf-traces" / "doomed")
    assert any(event.name == "resource_logs" for event in events)

    out, _ = proxy.communicate(timeout=20)
    assert proxy.returncode == 0
    assert "Client doomed went silent" in out
    assert "Sent kill signal" in out


def test_client_without_servers_retries_then_fails(hosts, ports) -> None:
    start_proxy(hosts, ports)
    client = start_client(
        hosts, ports, "lonely", "--nth", "5", "--timeout", "0.5", "--attempts", "3"
    )
    out, err = client.communicate(timeout=30)

    assert client.returncode == 1
    assert out.count("retrying") == 2
    assert "failed after 3 attempt(s): no reply within 0.5 s" in out
    assert "Giving up" in out
    assert "Traceback" not in err


def test_client_with_a_silent_server_retries_then_fails(hosts, ports) -> None:
    start_proxy(hosts, ports)
    context = zmq.Context.instance()
    silent = context.socket(zmq.ROUTER)
    silent.linger = 0
    silent.connect(f"tcp://127.0.0.1:{ports.backend}")
    try:
        client = start_client(hosts, ports, "patient", "--nth", "7", "--timeout", "0.5")
        out, _ = client.communicate(timeout=30)
        # The silent server saw every attempt and answered none.
        received = 0
        while silent.poll(100):
            silent.recv_multipart()
            received += 1
    finally:
        silent.close()

    assert client.returncode == 1
    assert received == 3
    assert "failed after 3 attempt(s)" in out


def test_client_recovers_when_a_server_comes_back(hosts, ports) -> None:
    start_proxy(hosts, ports)
    client = start_client(
        hosts, ports, "hopeful", "--nth", "10", "--timeout", "1", "--attempts", "5"
    )
    time.sleep(1.5)  # the first attempt has timed out by now
    hosts.start("server", *port_flags(ports))
    out, _ = client.communicate(timeout=30)

    assert client.returncode == 0
    assert "retrying" in out
    assert "Received 10th prime = 29" in out


@pytest.mark.parametrize("role", ["proxy", "server", "client"])
def test_hosts_stop_cleanly_on_sigterm(hosts, ports, role) -> None:
    start_proxy(hosts, ports) if role != "proxy" else None
    if role == "client":
        process = start_client(hosts, ports, "c", "--nth", "5", "--timeout", "30")
    else:
        process = hosts.start(role, *port_flags(ports))
        if role == "proxy":
            wait_for_port(ports.frontend, process)
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)

    assert process.returncode in (0, 130)
    assert "Traceback" not in err


def test_proxy_port_in_use_names_the_port(hosts, ports) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.frontend))
        squatter.listen()
        proxy = hosts.start("proxy", *port_flags(ports))
        _, err = proxy.communicate(timeout=15)

    assert proxy.returncode == 2
    assert f"tcp://127.0.0.1:{ports.frontend}" in err
    assert "already in use" in err
    assert "Traceback" not in err


def test_a_server_stops_when_the_proxy_is_gone(hosts, ports) -> None:
    proxy = start_proxy(hosts, ports)
    server = hosts.start("server", *port_flags(ports), "--proxy-loss-timeout", "1")
    # The server is connected once a request goes through.
    client = start_client(hosts, ports, "probe", "--nth", "3")
    assert client.wait(30) == 0
    proxy.send_signal(signal.SIGKILL)  # no KILL gets published
    proxy.wait(5)

    out, err = server.communicate(timeout=20)
    assert server.returncode == 0
    assert "Lost the proxy 1 s ago; shutting down" in out
    assert "Traceback" not in err


def test_clients_survive_a_server_crash(hosts, ports) -> None:
    start_proxy(hosts, ports)
    doomed = hosts.start("server", *port_flags(ports), "--name", "doomed")
    hosts.start("server", *port_flags(ports), "--name", "survivor")
    # About 50 ms of sieving each: the run lasts well past the fault.
    values = [str(1_500_000 + i) for i in range(80)]
    client = start_client(
        hosts, ports, "steady", "--nth", *values, "--timeout", "1", "--attempts", "4"
    )
    time.sleep(2.0)
    assert client.poll() is None
    doomed.send_signal(signal.SIGKILL)
    out, _ = client.communicate(timeout=120)

    assert client.returncode == 0
    assert out.count("Received ") == len(values)


def test_clients_survive_a_proxy_restart(hosts, ports) -> None:
    proxy = start_proxy(hosts, ports)
    hosts.start("server", *port_flags(ports))
    # About 50 ms of sieving each: the run lasts well past the fault.
    values = [str(1_500_000 + i) for i in range(80)]
    client = start_client(
        hosts, ports, "steady", "--nth", *values, "--timeout", "1", "--attempts", "5"
    )
    time.sleep(2.0)
    assert client.poll() is None
    proxy.send_signal(signal.SIGKILL)
    proxy.wait(5)
    replacement = start_proxy(hosts, ports, "--expect-clients", "1")
    out, _ = client.communicate(timeout=120)

    assert client.returncode == 0
    assert out.count("Received ") == len(values)
    # The new proxy learnt of the client from its heartbeats, and stopped
    # once it said goodbye.
    proxy_out, _ = replacement.communicate(timeout=20)
    assert "Client steady connected" in proxy_out
    assert "Client steady disconnected" in proxy_out
