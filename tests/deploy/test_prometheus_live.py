"""A real Prometheus server scrapes the live /metrics of running hosts.

The hosts run on loopback with free ports, each with --prometheus-port;
Debian's ``prometheus`` scrapes them every second, and the test asks its
HTTP API for the metrics the hosts' instruments produce.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port

from .helpers import clean_environment

pytestmark = pytest.mark.slow

#: Upper bound on waiting for Prometheus to have scraped what we look for.
QUERY_DEADLINE_SECONDS = 90.0


def start(
    command: list[str], log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env
        )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A proxy, a server and a long-running client, each serving /metrics.

    Yields each host's metrics port by host name. The client asks for a
    few thousand primes, so it is still running when Prometheus scrapes.
    """
    ports = [
        f"--{name}-port={free_port()}"
        for name in ("frontend", "backend", "connector", "terminator")
    ]
    metrics_ports = {name: free_port() for name in ("proxy", "server-1", "client-1")}
    env = clean_environment() | {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    commands = {
        "proxy": ["proxy", "--expect-clients", "1"],
        "server-1": ["server", "--workers", "1"],
        "client-1": ["client", "--requests", "5000"],
    }
    processes = []
    try:
        for name, arguments in commands.items():
            command = [
                sys.executable, "-m", "otelzmq", *arguments, *ports,
                "--name", name, "--out", str(tmp_path),
                "--prometheus-port", str(metrics_ports[name]),
            ]  # fmt: skip
            processes.append(start(command, tmp_path / f"{name}.log", env))
        yield metrics_ports
    finally:
        stop(processes)


@pytest.fixture
def prometheus(tmp_path: Path, hosts: dict[str, int]) -> Iterator[str]:
    """Debian's prometheus on loopback, scraping the hosts every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "otelzmq",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{port}"],
                        "labels": {"host": name},
                    }
                    for name, port in hosts.items()
                ],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    web_port = free_port()
    process = start(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        tmp_path / "prometheus.log",
        clean_environment(),
    )
    try:
        yield f"http://127.0.0.1:{web_port}"
    finally:
        stop([process])


def query(base_url: str, expression: str) -> list[dict[str, Any]]:
    """Run an instant query; an unreachable server counts as no result yet."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except (urllib.error.URLError, ConnectionError):
        return []
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def wait_for(base_url: str, expression: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + QUERY_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        result = query(base_url, expression)
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"Prometheus returned nothing for {expression!r}")


def test_prometheus_scrapes_client_proxy_and_worker_metrics(
    prometheus: str, hosts: dict[str, int]
) -> None:
    durations = wait_for(
        prometheus,
        'otelzmq_client_request_duration_seconds_count{otelzmq_outcome="ok"} > 0',
    )
    assert {series["metric"]["host"] for series in durations} == {"client-1"}

    connected = wait_for(prometheus, "otelzmq_proxy_connected_clients")
    assert [series["metric"]["host"] for series in connected] == ["proxy"]
    assert float(connected[0]["value"][1]) == 1.0

    for expression, host in (
        ("otelzmq_client_requests_total", "client-1"),
        ("otelzmq_proxy_forwarded_messages_total", "proxy"),
        ("otelzmq_worker_compute_duration_seconds_bucket", "server-1"),
        ("otelzmq_worker_active_requests", "server-1"),
    ):
        result = wait_for(prometheus, expression)
        assert {series["metric"]["host"] for series in result} == {host}

    targets = wait_for(prometheus, 'up{job="otelzmq"} == 1')
    assert len(targets) == len(hosts)
