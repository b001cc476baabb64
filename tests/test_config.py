import argparse
import logging

import pytest

from otelzmq import config


def test_env_int_reads_the_prefixed_variable(monkeypatch) -> None:
    monkeypatch.setenv("OTELZMQ_WORKERS", "7")
    assert config.env_int("WORKERS", 2) == 7


@pytest.mark.parametrize("raw", ["seven", "-1", "2.5"])
def test_env_int_warns_and_keeps_the_default(monkeypatch, caplog, raw) -> None:
    monkeypatch.setenv("OTELZMQ_WORKERS", raw)
    with caplog.at_level(logging.WARNING):
        assert config.env_int("WORKERS", 2) == 2
    assert "OTELZMQ_WORKERS" in caplog.text


def test_env_float_warns_on_garbage(monkeypatch, caplog) -> None:
    monkeypatch.setenv("OTELZMQ_IDLE_GRACE", "soon")
    with caplog.at_level(logging.WARNING):
        assert config.env_float("IDLE_GRACE", 10.0) == 10.0
    assert "soon" in caplog.text


@pytest.mark.parametrize("text", ["0", "65536", "http", "-5"])
def test_port_rejects_bad_values(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        config.port(text)


def test_endpoints_use_the_configured_host_and_ports() -> None:
    address = config.ProxyAddress("proxy", config.ProxyPorts(1, 2, 3, 4))
    assert address.endpoint("frontend") == "tcp://proxy:1"
    assert address.endpoint("terminator") == "tcp://proxy:4"


def test_ipv6_literals_are_bracketed() -> None:
    assert config.tcp_endpoint("::1", 5559) == "tcp://[::1]:5559"


def test_port_flags_default_to_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("OTELZMQ_FRONTEND_PORT", "7001")
    parser = argparse.ArgumentParser()
    config.add_port_arguments(parser)
    ports = config.ports_from_args(parser.parse_args([]))
    assert ports == config.ProxyPorts(7001, 5560, 5561, 5562)


def test_settings_document_their_variable_and_default(monkeypatch) -> None:
    monkeypatch.setenv("OTELZMQ_IDLE_GRACE", "2.5")
    parser = argparse.ArgumentParser()
    config.add_setting(parser, "--idle-grace", "IDLE_GRACE", 10.0, "wait", type=float)
    config.add_setting(
        parser, "--metrics-port", "METRICS_PORT", None, "serve", type=config.port
    )

    args = parser.parse_args([])
    assert args.idle_grace == 2.5
    assert args.metrics_port is None
    help_text = " ".join(parser.format_help().split())
    assert "(env OTELZMQ_IDLE_GRACE, default 10)" in help_text
    assert "(env OTELZMQ_METRICS_PORT)" in help_text
    assert parser.parse_args(["--metrics-port", "9464"]).metrics_port == 9464
