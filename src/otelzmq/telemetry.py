"""OpenTelemetry set-up for one host: resource, providers and exporters.

Exporters are chosen the way the OpenTelemetry SDK's own configuration
chooses them: ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER`` and
``OTEL_LOGS_EXPORTER`` name entry points of the ``opentelemetry_*_exporter``
groups (``ctf``, ``otlp``, ``console``, ``none`` ...). Unlike the SDK, the
default here is ``ctf``: every host records its telemetry locally unless
told otherwise. ``otlp`` follows ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc``
by default, or ``http/protobuf``) and the other ``OTEL_EXPORTER_OTLP_*``
variables.

Metrics can also be served live for Prometheus on ``/metrics`` with
``--prometheus-port``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otelzmq import __version__
from otelzmq.config import ENV_PREFIX, add_setting, env_int, port

logger = logging.getLogger(__name__)

DEFAULT_EXPORTER = "ctf"
DEFAULT_OUT = "out"

#: Metrics are exported this often unless OTEL_METRIC_EXPORT_INTERVAL says
#: otherwise (the SDK's one minute is longer than a whole default run).
_DEFAULT_METRIC_INTERVAL_MS = 5_000

_SIGNAL_VARIABLES = {
    "traces": "OTEL_TRACES_EXPORTER",
    "metrics": "OTEL_METRICS_EXPORTER",
    "logs": "OTEL_LOGS_EXPORTER",
}
_OTLP_ENTRY_POINTS = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def add_telemetry_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """Add the flags every host shares: name, output folder, Prometheus."""
    group = parser.add_argument_group("telemetry")
    add_setting(
        group,
        "--name",
        "HOST_NAME",
        role,
        "this host's name: its service.instance.id and trace folder name",
    )
    add_setting(
        group,
        "--out",
        "OUT",
        DEFAULT_OUT,
        "CTF traces go to DIR/ctf-traces/NAME",
        metavar="DIR",
    )
    add_setting(
        group,
        "--prometheus-port",
        "PROMETHEUS_PORT",
        None,
        "serve live metrics for Prometheus on PORT/metrics",
        type=port,
        metavar="PORT",
    )
    add_setting(
        group,
        "--prometheus-host",
        "PROMETHEUS_HOST",
        "127.0.0.1",
        "address the metrics endpoint listens on",
        metavar="ADDR",
    )


def exporter_names(signal: str) -> list[str]:
    """Return the entry point names selected for one signal."""
    raw = os.environ.get(_SIGNAL_VARIABLES[signal], DEFAULT_EXPORTER)
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    if names == ["none"] or not names:
        return []
    resolved = []
    for name in names:
        if name == "otlp":
            protocol = os.environ.get(
                f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ).strip()
            name = _OTLP_ENTRY_POINTS.get(protocol, "")
            if not name:
                logger.warning(
                    "Unknown OTLP protocol %r for %s; using grpc", protocol, signal
                )
                name = _OTLP_ENTRY_POINTS["grpc"]
        resolved.append(name)
    return resolved


def load_exporters(signal: str) -> list[Any]:
    """Instantiate the exporters selected for one signal.

    An unknown name is logged and skipped: a host keeps running without
    that exporter rather than failing to start.
    """
    group = f"opentelemetry_{signal}_exporter"
    available = {ep.name: ep for ep in entry_points(group=group)}
    exporters = []
    for name in exporter_names(signal):
        entry_point = available.get(name)
        if entry_point is None:
            logger.warning(
                "No %s exporter named %r (available: %s)",
                signal,
                name,
                ", ".join(sorted(available)),
            )
            continue
        try:
            exporters.append(entry_point.load()())
        except Exception:
            logger.exception("Could not create the %r %s exporter", name, signal)
    return exporters


def build_resource(role: str, host_name: str) -> Resource:
    """Describe this host; OTEL_RESOURCE_ATTRIBUTES may add more."""
    attributes = {
        "service.name": f"otelzmq-{role}",
        "service.instance.id": host_name,
        "service.version": __version__,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
    }
    return Resource.create(attributes)


@dataclass
class Telemetry:
    """The providers of one host, to shut down when the host stops."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    log_handler: logging.Handler
    trace_directory: Path
    readers: list[MetricReader] = field(default_factory=list)

    def shutdown(self) -> None:
        """Flush and stop every provider; never raises."""
        logging.getLogger().removeHandler(self.log_handler)
        for provider in (
            self.tracer_provider,
            self.meter_provider,
            self.logger_provider,
        ):
            try:
                provider.shutdown()
            except Exception:
                logger.exception("Shutting down %s failed", type(provider).__name__)


def setup_telemetry(
    role: str,
    host_name: str,
    out: str | os.PathLike[str] = DEFAULT_OUT,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
) -> Telemetry:
    """Configure OpenTelemetry for a host and install it globally.

    Args:
        role: ``client``, ``proxy`` or ``server``.
        host_name: This host's name (``client-1`` ...).
        out: Output folder; CTF traces go to ``out/ctf-traces/host_name``
            unless ``OTELZMQ_CTF_DIR`` names another folder.
        prometheus_port: When set, serve metrics on this port's /metrics.
        prometheus_host: The address the metrics endpoint listens on.

    Returns:
        The providers, to be shut down when the host stops.
    """
    trace_directory = Path(out) / "ctf-traces" / host_name
    os.environ.setdefault(ENV_PREFIX + "CTF_DIR", str(trace_directory))
    os.environ.setdefault(ENV_PREFIX + "HOST_NAME", host_name)
    resource = build_resource(role, host_name)

    tracer_provider = TracerProvider(resource=resource)
    for exporter in load_exporters("traces"):
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)

    interval = env_int(
        "OTEL_METRIC_EXPORT_INTERVAL", _DEFAULT_METRIC_INTERVAL_MS, minimum=1, prefix=""
    )
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
        for exporter in load_exporters("metrics")
    ]
    if prometheus_port:
        readers.append(_serve_prometheus(prometheus_host, prometheus_port))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meter_provider)

    logger_provider = LoggerProvider(resource=resource)
    for exporter in load_exporters("logs"):
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logging.getLogger().addHandler(handler)

    return Telemetry(
        tracer_provider,
        meter_provider,
        logger_provider,
        handler,
        Path(os.environ[ENV_PREFIX + "CTF_DIR"]),
        readers,
    )


def _serve_prometheus(host: str, port_number: int) -> MetricReader:
    """Start a /metrics endpoint and return the reader that feeds it."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    start_http_server(port_number, addr=host)
    logger.info("Serving metrics on http://%s:%d/metrics", host, port_number)
    return PrometheusMetricReader()
