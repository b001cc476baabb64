"""Hosts that send live over OTLP, or to the console, instead of recording."""

from __future__ import annotations

import collections
import subprocess
from pathlib import Path

import pytest

from otelzmq import semconv as sc
from tests.conftest import host_environment, up_command
from tests.replay.receivers import GrpcReceiver, HttpReceiver

pytestmark = pytest.mark.slow


def run_up(tmp_path: Path, ports, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        up_command(tmp_path / "out", ports, "--requests", "3"),
        capture_output=True,
        text=True,
        timeout=180,
        env=host_environment(**env),
    )


def exporter_env(name: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": name,
        "OTEL_METRICS_EXPORTER": name,
        "OTEL_LOGS_EXPORTER": name,
        **extra,
    }


@pytest.mark.parametrize(
    ("receiver_class", "protocol"),
    [(GrpcReceiver, "grpc"), (HttpReceiver, "http/protobuf")],
)
def test_otlp_sends_every_signal_live(tmp_path, ports, receiver_class, protocol):
    with receiver_class() as receiver:
        env = exporter_env(
            "otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        )
        result = run_up(tmp_path, ports, env)
        assert result.returncode == 0, result.stderr

        spans = collections.Counter()
        for resource in receiver.received.resources("spans"):
            for scope in resource.scope_spans:
                spans.update(span.name for span in scope.spans)
        # Every host sends its logs (a server may have had no request).
        services = {
            kv.value.string_value
            for resource in receiver.received.resources("logs")
            for kv in resource.resource.attributes
            if kv.key == "service.instance.id"
        }
        assert receiver.received.resources("metrics")

    assert spans[sc.SPAN_REQUEST] == 9
    assert spans[sc.SPAN_RESPONSE] == 9
    assert spans[sc.SPAN_PROXY_REQUEST] == 9
    assert services == {
        "client-1",
        "client-2",
        "client-3",
        "proxy",
        "server-1",
        "server-2",
    }
    # Nothing was recorded locally.
    assert not (tmp_path / "out" / "ctf-traces").exists()


def test_console_and_none(tmp_path, ports) -> None:
    env = exporter_env("none")
    env["OTEL_TRACES_EXPORTER"] = "console"
    result = run_up(tmp_path, ports, env)

    assert result.returncode == 0, result.stderr
    client_log = (tmp_path / "out" / "output" / "client-1" / "output.log").read_text()
    assert f'"name": "{sc.SPAN_REQUEST}"' in client_log
    assert not (tmp_path / "out" / "ctf-traces").exists()


def test_an_unknown_exporter_is_a_warning_not_a_crash(tmp_path, ports) -> None:
    result = run_up(tmp_path, ports, exporter_env("carrier-pigeon"))

    assert result.returncode == 0, result.stderr
    proxy_log = (tmp_path / "out" / "output" / "proxy" / "output.log").read_text()
    assert "No traces exporter named 'carrier-pigeon'" in proxy_log
