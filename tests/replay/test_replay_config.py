"""OTEL_EXPORTER_OTLP_* settings reach the wire: headers and TLS."""

from __future__ import annotations

import pytest

from tests.conftest import LTTNG_FIXTURE
from tests.replay.conftest import run_replay
from tests.replay.receivers import GrpcReceiver, HttpReceiver

PROTOCOLS = {"grpc": GrpcReceiver, "http/protobuf": HttpReceiver}

#: requests prefers these to the exporter's own certificate setting.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_headers_from_environment(protocol: str) -> None:
    with PROTOCOLS[protocol]() as receiver:
        result = run_replay(
            str(LTTNG_FIXTURE),
            "--endpoint",
            receiver.endpoint,
            "--protocol",
            protocol,
            OTEL_EXPORTER_OTLP_HEADERS="x-tenant=blue,authorization=Bearer%20abc",
            OTEL_EXPORTER_OTLP_LOGS_HEADERS="x-tenant=green",
        )

    assert result.returncode == 0, result.stderr
    headers = receiver.received.headers
    assert len(headers) == 3
    tenants = sorted(request["x-tenant"] for request in headers)
    assert tenants == ["blue", "blue", "green"]
    assert sum(r.get("authorization") == "Bearer abc" for r in headers) == 2


@pytest.mark.slow
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_tls_with_the_certificate_from_environment(
    protocol: str, tls_files: tuple[str, str]
) -> None:
    with PROTOCOLS[protocol](tls=tls_files) as receiver:
        trusted = run_replay(
            str(LTTNG_FIXTURE),
            "--endpoint",
            receiver.endpoint,
            "--protocol",
            protocol,
            unset=CA_BUNDLE_VARIABLES,
            OTEL_EXPORTER_OTLP_CERTIFICATE=tls_files[0],
        )
        untrusted = run_replay(
            str(LTTNG_FIXTURE),
            "--endpoint",
            receiver.endpoint,
            "--protocol",
            protocol,
            unset=CA_BUNDLE_VARIABLES,
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
        )

    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert receiver.received.request_count() == 3
    assert untrusted.returncode == 1
    assert "Some telemetry was lost." in untrusted.stdout
