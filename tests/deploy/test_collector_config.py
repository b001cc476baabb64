"""The collector and Prometheus configurations agree with each other and
with the compose file."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .helpers import DEPLOY, ComposeConfig

COLLECTOR_CONFIG = DEPLOY / "otel-collector.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return yaml.safe_load(COLLECTOR_CONFIG.read_text())


def component_type(name: str) -> str:
    """``otlp/jaeger`` -> ``otlp``: the collector's type/name convention."""
    return name.split("/", 1)[0]


def test_pipelines_use_only_defined_components(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    used: dict[str, set[str]] = {
        "receivers": set(),
        "processors": set(),
        "exporters": set(),
    }
    for pipeline in pipelines.values():
        for kind in used:
            used[kind] |= set(pipeline.get(kind, []))
        assert pipeline["receivers"] and pipeline["exporters"]
    for kind, names in used.items():
        assert names == set(collector[kind]), f"unused or undefined {kind}"
    assert set(collector["service"]["extensions"]) == set(collector["extensions"])


def test_otlp_comes_in_over_grpc_and_http(collector: dict[str, Any]) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    for pipeline in collector["service"]["pipelines"].values():
        assert pipeline["receivers"] == ["otlp"]


def test_traces_go_to_jaeger_and_metrics_to_prometheus(
    collector: dict[str, Any], compose_config: ComposeConfig
) -> None:
    services = compose_config("--profile", "observability")["services"]
    pipelines = collector["service"]["pipelines"]

    [trace_exporter] = pipelines["traces"]["exporters"]
    assert component_type(trace_exporter) == "otlp"
    host, port = collector["exporters"][trace_exporter]["endpoint"].split(":")
    assert host == "jaeger" and host in services and port == "4317"

    [metric_exporter] = pipelines["metrics"]["exporters"]
    assert component_type(metric_exporter) == "prometheus"
    exposed = collector["exporters"][metric_exporter]["endpoint"].split(":")[1]
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert f"collector:{exposed}" in targets


def test_collector_mounts_this_config(compose_config: ComposeConfig) -> None:
    collector = compose_config("--profile", "observability")["services"]["collector"]
    mounted = {
        volume.split(":")[0]: volume.split(":")[1] for volume in collector["volumes"]
    }
    assert mounted[str(COLLECTOR_CONFIG)] == "/etc/otelcol-contrib/config.yaml"
    assert "--config=/etc/otelcol-contrib/config.yaml" in collector["command"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")


def test_prometheus_mounts_this_config(compose_config: ComposeConfig) -> None:
    prometheus = compose_config("--profile", "observability")["services"]["prometheus"]
    mounted = {
        volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]
    }
    assert mounted[str(PROMETHEUS_CONFIG)] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_replay_and_live_hosts_target_the_collector_receiver(
    collector: dict[str, Any], compose_config: ComposeConfig
) -> None:
    grpc_port = int(
        collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].split(":")[1]
    )
    services = compose_config(
        "--profile", "replay", "--env-file", str(DEPLOY / "live.env")
    )["services"]
    replay_command = services["replay"]["command"]
    endpoints = [replay_command[replay_command.index("--endpoint") + 1]]
    endpoints.append(services["client-1"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    for endpoint in endpoints:
        parts = urlsplit(endpoint)
        assert (parts.hostname, parts.port) == ("collector", grpc_port)


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
