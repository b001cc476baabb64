"""scripts/netns-run.sh: the topology with one network namespace per host.

These tests create real namespaces, veth links and a bridge, so they need
root (CAP_SYS_ADMIN and CAP_NET_ADMIN); elsewhere they skip and say why.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otelzmq.recording import read_recording

from .helpers import SCRIPTS

SCRIPT = SCRIPTS / "netns-run.sh"
OTELZMQ = f"{sys.executable} -m otelzmq"
CLIENTS = ("client-1", "client-2", "client-3")
SERVERS = ("server-1", "server-2")

pytestmark = pytest.mark.slow

Runner = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture(scope="module", autouse=True)
def namespaces_allowed() -> None:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (the ip command) is not installed")
    probe = f"otelzmq-probe-{os.getpid()}"
    created = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if created.returncode != 0:
        reason = created.stderr.strip() or "unknown error"
        pytest.skip(f"cannot create network namespaces here ({reason}); needs root")
    subprocess.run(["ip", "netns", "delete", probe], check=True)


_RUNS = itertools.count(1)


def namespaces_named(prefix: str) -> list[str]:
    listing = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    )
    return [
        line.split()[0]
        for line in listing.stdout.splitlines()
        if line.startswith(prefix + "-")
    ]


@pytest.fixture
def netns_id() -> Iterator[str]:
    """Give the run an id, and remove its namespaces if the script could not."""
    prefix = f"t{os.getpid()}n{next(_RUNS)}"
    yield prefix
    for leftover in namespaces_named(prefix):
        subprocess.run(["ip", "netns", "delete", leftover], check=False)


@pytest.fixture
def netns_run(netns_id: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start the script; whatever a test leaves running is stopped after it."""
    started: list[subprocess.Popen[str]] = []

    def run(out: Path, *arguments: str) -> subprocess.Popen[str]:
        command = [str(SCRIPT), "--out", str(out), "--id", netns_id]
        process = subprocess.Popen(
            [*command, "--otelzmq", OTELZMQ, *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=60)


def read_hosts(out: Path) -> dict[str, str]:
    hosts = {}
    for line in (out / "hosts.tsv").read_text().splitlines():
        host, address, _namespace = line.split("\t")
        hosts[host] = address
    return hosts


def attribute_values(span: Any) -> dict[str, Any]:
    values = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind) if kind else None
    return values


def recorded_spans(out: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Host -> [(span name, attributes)] from the run's CTF recording."""
    errors: list[Exception] = []
    spans: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for record in read_recording(
        [out / "ctf-traces"], signals={"spans"}, on_error=errors.append
    ):
        for scope_spans in record.message.scope_spans:
            for span in scope_spans.spans:
                spans[record.host].append((span.name, attribute_values(span)))
    assert not errors
    return spans


def test_every_answer_crosses_real_links_between_namespaces(
    tmp_path: Path, netns_id: str, netns_run: Runner
) -> None:
    process = netns_run(tmp_path, "--timeout", "120")
    _, stderr = process.communicate(timeout=180)

    assert process.returncode == 0, stderr
    assert namespaces_named(netns_id) == []
    hosts = read_hosts(tmp_path)
    assert set(hosts) == {"proxy", *SERVERS, *CLIENTS}
    assert len(set(hosts.values())) == len(hosts)
    proxy = hosts["proxy"]

    # Every client got its ten answers.
    for client in CLIENTS:
        lines = (tmp_path / "output" / client / "output.log").read_text().splitlines()
        received = [line for line in lines if line.startswith("[client] Received")]
        assert len(received) == 10, lines
        assert received[0] == "[client] Received 1st prime = 2"

    spans = recorded_spans(tmp_path)
    assert set(spans) == set(hosts)

    # Clients reached the proxy at its namespace address, and heard back
    # from that address.
    for client in CLIENTS:
        attempts = [a for name, a in spans[client] if name == "get-nth-prime-attempt"]
        assert len(attempts) >= 10
        assert {a["server.address"] for a in attempts} == {proxy}
        answered = [a for a in attempts if "network.peer.address" in a]
        assert len(answered) >= 10
        assert {a["network.peer.address"] for a in answered} == {proxy}

    # The proxy saw each request come from its client's address and each
    # answer from a server's address.
    proxy_spans = spans["proxy"]
    from_clients = {
        a["network.peer.address"]
        for name, a in proxy_spans
        if name == "proxy-frontend-to-backend"
    }
    from_servers = {
        a["network.peer.address"]
        for name, a in proxy_spans
        if name == "proxy-backend-to-frontend"
    }
    assert from_clients == {hosts[client] for client in CLIENTS}
    assert from_servers == {hosts[server] for server in SERVERS}


def test_a_failing_run_reports_and_cleans_up(
    tmp_path: Path, netns_id: str, netns_run: Runner
) -> None:
    # Every host rejects the unknown flag, so the proxy never listens.
    process = netns_run(tmp_path, "--timeout", "60", "--", "--no-such-flag")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 1
    assert "the proxy exited before listening" in stderr
    assert namespaces_named(netns_id) == []
    proxy_errors = (tmp_path / "output" / "proxy" / "stderr.log").read_text()
    assert "--no-such-flag" in proxy_errors


def test_an_interrupted_run_stops_its_hosts_and_cleans_up(
    tmp_path: Path, netns_id: str, netns_run: Runner
) -> None:
    # A long run: the client asks for a thousand growing primes.
    process = netns_run(tmp_path, "--clients", "1", "--requests", "1000")
    assert process.stderr is not None
    started: dict[str, int] = {}
    for line in process.stderr:
        match = re.match(r"netns-run: started (\S+) at \S+ \(pid (\d+)\)", line)
        if match:
            started[match.group(1)] = int(match.group(2))
        if "client-1" in started:
            break
    assert set(started) == {"proxy", *SERVERS, "client-1"}
    client_log = tmp_path / "output" / "client-1" / "output.log"
    while not client_log.exists() or "Received" not in client_log.read_text():
        assert process.poll() is None, "the run ended before it was interrupted"
        time.sleep(0.1)

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    assert process.returncode == 143
    assert namespaces_named(netns_id) == []
    for host, pid in started.items():
        assert not pid_alive(pid), f"{host} (pid {pid}) outlived the script"


def pid_alive(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True


def test_a_caller_going_away_still_leaves_nothing_behind(
    tmp_path: Path, netns_id: str, netns_run: Runner
) -> None:
    process = netns_run(tmp_path, "--clients", "1", "--requests", "1000")
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.match(r"netns-run: started proxy at \S+ \(pid (\d+)\)", first)
    assert match, first

    # Nobody reads the script's diagnostics any more.
    process.stderr.close()
    process.wait(timeout=60)

    assert process.returncode != 0
    assert namespaces_named(netns_id) == []
    assert not pid_alive(int(match.group(1)))
