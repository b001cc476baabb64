"""docker-compose.yml: topology, profiles, paths and agreement with the CLI.

There is no Docker engine here, so the file is resolved with
``docker-compose config`` and what it would run is checked against the
otelzmq command line itself.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest

from .helpers import (
    COMPOSE_FILE,
    DEPLOY,
    REPO,
    ComposeConfig,
    clean_environment,
    parse_like_the_container,
)

TOPOLOGY = ("proxy", "server-1", "server-2", "client-1", "client-2", "client-3")
CLIENTS = ("client-1", "client-2", "client-3")
SERVERS = ("server-1", "server-2")
PROFILES = {"observability", "replay", "scale"}
EXPORTER_GROUPS = {
    "OTEL_TRACES_EXPORTER": "opentelemetry_traces_exporter",
    "OTEL_METRICS_EXPORTER": "opentelemetry_metrics_exporter",
    "OTEL_LOGS_EXPORTER": "opentelemetry_logs_exporter",
}


def active_services(source: dict[str, Any], *profiles: str) -> set[str]:
    """Services ``docker compose --profile ... up`` starts (1.29 cannot say)."""
    return {
        name
        for name, service in source["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def test_config_resolves_for_every_profile(
    compose_config: ComposeConfig, docker_compose: str
) -> None:
    listed = subprocess.run(
        [docker_compose, "--file", str(COMPOSE_FILE), "config", "--profiles"],
        capture_output=True,
        text=True,
        env=clean_environment(),
        timeout=60,
        check=True,
    )
    assert set(listed.stdout.split()) == PROFILES

    for profile in sorted(PROFILES):
        resolved = compose_config("--profile", profile)
        assert set(TOPOLOGY) <= set(resolved["services"])


def test_default_run_starts_the_original_topology(
    compose_source: dict[str, Any],
) -> None:
    assert active_services(compose_source) == {*TOPOLOGY, "prepare-out"}
    assert active_services(compose_source, "observability") == {
        *TOPOLOGY,
        "prepare-out",
        "collector",
        "jaeger",
        "prometheus",
    }
    assert "replay" in active_services(compose_source, "replay")
    assert {"client", "server"} <= active_services(compose_source, "scale")


def test_each_host_writes_its_own_trace_and_output_folders(
    compose_config: ComposeConfig,
) -> None:
    services = compose_config()["services"]
    for host in TOPOLOGY:
        service = services[host]
        environment = service["environment"]
        assert environment["OTELZMQ_HOST_NAME"] == host
        assert environment["OTELZMQ_OUT"] == "/out"
        assert f"{REPO}/out:/out:rw" in service["volumes"]
        # The wrapper writes $OTELZMQ_OUT/output/$OTELZMQ_HOST_NAME/output.log
        # and the host writes $OTELZMQ_OUT/ctf-traces/$OTELZMQ_HOST_NAME.
        assert service["entrypoint"] == ["with-output-log", "otelzmq"]
        assert service["command"][0] in {"proxy", "server", "client"}
        assert service["init"] is True


def test_proxy_is_reachable_and_healthy_before_anyone_connects(
    compose_config: ComposeConfig,
) -> None:
    services = compose_config()["services"]
    proxy = services["proxy"]
    assert proxy["environment"]["OTELZMQ_BIND_ADDRESS"] == "0.0.0.0"
    command = proxy["command"]
    expected = int(command[command.index("--expect-clients") + 1])
    assert expected == len(CLIENTS)
    assert proxy["healthcheck"]["test"][0] == "CMD"

    for host in (*SERVERS, *CLIENTS):
        service = services[host]
        assert service["environment"]["OTELZMQ_PROXY_HOST"] == "proxy"
        assert service["depends_on"]["proxy"] == {"condition": "service_healthy"}
    for host in SERVERS:
        command = services[host]["command"]
        assert command[command.index("--workers") + 1] == "2"
    for host in CLIENTS:
        command = services[host]["command"]
        assert command[command.index("--requests") + 1] == "10"


def test_expect_clients_follows_the_environment(
    compose_config: ComposeConfig, tmp_path: Any
) -> None:
    env_file = tmp_path / "scaled.env"
    env_file.write_text("OTELZMQ_EXPECT_CLIENTS=7\n")
    proxy = compose_config("--env-file", str(env_file))["services"]["proxy"]
    assert proxy["command"][-2:] == ["--expect-clients", "7"]


def test_observability_ports_are_published(compose_config: ComposeConfig) -> None:
    services = compose_config("--profile", "observability")["services"]
    published = {
        (name, int(port["published"]), int(port["target"]))
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    for expected in (
        ("jaeger", 16686, 16686),
        ("prometheus", 9090, 9090),
        ("collector", 4317, 4317),
        ("collector", 4318, 4318),
    ):
        assert expected in published


def test_replay_reads_the_recording_after_every_host_finished(
    compose_config: ComposeConfig,
) -> None:
    replay = compose_config("--profile", "replay")["services"]["replay"]
    command = replay["command"]
    assert command[:2] == ["replay", "/out/ctf-traces"]
    endpoint = urlsplit(command[command.index("--endpoint") + 1])
    assert (endpoint.hostname, endpoint.port) == ("collector", 4317)
    assert f"{REPO}/out:/out:ro" in replay["volumes"]
    for host in TOPOLOGY:
        condition = replay["depends_on"][host]["condition"]
        assert condition == "service_completed_successfully"


def test_live_env_file_switches_every_host_to_otlp(
    compose_config: ComposeConfig,
) -> None:
    recorded = compose_config()["services"]
    live = compose_config("--env-file", str(DEPLOY / "live.env"))["services"]
    for host in TOPOLOGY:
        for variable in EXPORTER_GROUPS:
            assert recorded[host]["environment"][variable] == "ctf"
            assert live[host]["environment"][variable] == "otlp"
        endpoint = urlsplit(live[host]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (endpoint.hostname, endpoint.port) == ("collector", 4317)
        assert live[host]["environment"]["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


@pytest.mark.parametrize("env_file", [None, DEPLOY / "live.env"])
def test_exporter_names_are_registered_entry_points(
    compose_config: ComposeConfig, env_file: Any
) -> None:
    options = ("--env-file", str(env_file)) if env_file else ()
    services = compose_config(*options)["services"]
    for variable, group in EXPORTER_GROUPS.items():
        registered = {ep.name for ep in importlib.metadata.entry_points(group=group)}
        for host in TOPOLOGY:
            names = services[host]["environment"][variable].split(",")
            # otelzmq.telemetry maps "otlp" to the entry point of
            # OTEL_EXPORTER_OTLP_PROTOCOL, as the SDK's own configuration does.
            assert set(names) <= registered | {"none", "otlp"}, (host, variable)
            if "otlp" in names:
                protocol = services[host]["environment"]["OTEL_EXPORTER_OTLP_PROTOCOL"]
                assert {"grpc": "otlp_proto_grpc"}[protocol] in registered


@pytest.mark.usefixtures("cli_available")
@pytest.mark.parametrize("host", [*TOPOLOGY, "client", "server", "replay"])
def test_cli_reads_every_setting_the_service_passes(
    compose_config: ComposeConfig, host: str
) -> None:
    service = compose_config("--profile", "scale", "--profile", "replay")["services"][
        host
    ]
    environment = service.get("environment", {})
    args = parse_like_the_container(service["command"], environment)
    values = {str(value) for value in args.values()}

    for variable, value in environment.items():
        if variable.startswith("OTELZMQ_"):
            assert str(value) in values, f"{variable} is not read by the CLI"
    command = service["command"]
    for flag, value in zip(command, command[1:], strict=False):
        if flag.startswith("--"):
            key = flag[2:].replace("-", "_")
            assert str(args[key]) == value, flag


@pytest.mark.usefixtures("cli_available")
def test_cli_defaults_are_not_what_the_services_set(
    compose_config: ComposeConfig,
) -> None:
    # Guards the test above: a setting that already equals the default would
    # pass even if the variable were ignored.
    services = compose_config()["services"]
    defaults = parse_like_the_container(["proxy"], {})
    assert defaults["bind"] != services["proxy"]["environment"]["OTELZMQ_BIND_ADDRESS"]
    for host in (*SERVERS, *CLIENTS):
        role = services[host]["command"][0]
        defaults = parse_like_the_container([role], {})
        environment = services[host]["environment"]
        assert defaults["proxy_host"] != environment["OTELZMQ_PROXY_HOST"]
        assert defaults["name"] != environment["OTELZMQ_HOST_NAME"]
        assert defaults["out"] != environment["OTELZMQ_OUT"]


def test_commands_the_services_name_are_in_the_image(
    compose_config: ComposeConfig,
) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    installed = {"otelzmq", "sh"}  # the project's console script; the base image
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and words[-1].startswith("/usr/local/bin/"):
            source = REPO / words[-2]
            assert os.access(source, os.X_OK), f"{source} is not executable"
            installed.add(words[-1].removeprefix("/usr/local/bin/"))

    services = compose_config("--profile", "scale", "--profile", "replay")
    for name, service in services["services"].items():
        if service["image"] != "otelzmq:latest":
            continue
        named = [service.get("entrypoint", ["otelzmq"])[0]]
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert test[0] == "CMD"
            named.append(test[1])
        assert set(named) <= installed, name


def test_clients_start_once_both_servers_are_connected(
    compose_config: ComposeConfig,
) -> None:
    services = compose_config("--profile", "scale")["services"]
    for host in SERVERS:
        assert services[host]["healthcheck"]["test"][1:] == [
            "otelzmq-healthcheck",
            "server",
        ]
    for host in (*CLIENTS, "client"):
        for server in SERVERS:
            condition = services[host]["depends_on"][server]["condition"]
            assert condition == "service_healthy"
