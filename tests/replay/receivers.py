"""OTLP receivers for tests: gRPC and HTTP servers on real loopback sockets.

Both keep every export request they accept, parsed, and can be told to
refuse the first N calls (gRPC UNAVAILABLE, HTTP 503) to exercise retries.
"""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
import zlib
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2 as metrics_pb,
)
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2_grpc as metrics_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2_grpc as trace_grpc,
)

#: signal -> (request class, response class, repeated field, HTTP path)
SIGNALS: dict[str, tuple[type, type, str, str]] = {
    "spans": (
        trace_pb.ExportTraceServiceRequest,
        trace_pb.ExportTraceServiceResponse,
        "resource_spans",
        "/v1/traces",
    ),
    "metrics": (
        metrics_pb.ExportMetricsServiceRequest,
        metrics_pb.ExportMetricsServiceResponse,
        "resource_metrics",
        "/v1/metrics",
    ),
    "logs": (
        logs_pb.ExportLogsServiceRequest,
        logs_pb.ExportLogsServiceResponse,
        "resource_logs",
        "/v1/logs",
    ),
}


@dataclass
class Received:
    """What a receiver accepted and refused, shared by both kinds."""

    fail_first: int = 0
    requests: dict[str, list[Any]] = field(
        default_factory=lambda: {signal: [] for signal in SIGNALS}
    )
    refused: int = 0
    calls: int = 0
    encodings: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> bool:
        """Count a call; False while the first ``fail_first`` are refused."""
        with self.lock:
            self.calls += 1
            if self.refused < self.fail_first:
                self.refused += 1
                return False
            return True

    def keep(self, signal: str, request: Any) -> None:
        with self.lock:
            self.requests[signal].append(request)

    def resources(self, signal: str) -> list[Any]:
        """Every resource received for ``signal``, in arrival order."""
        name = SIGNALS[signal][2]
        with self.lock:
            return [
                resource
                for request in self.requests[signal]
                for resource in getattr(request, name)
            ]

    def request_count(self) -> int:
        with self.lock:
            return sum(len(requests) for requests in self.requests.values())


class _GrpcService:
    def __init__(self, signal: str, received: Received):
        self.signal = signal
        self.received = received
        self.response_class = SIGNALS[signal][1]

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        with self.received.lock:
            self.received.headers.append(metadata)
        if not self.received.admit():
            retry = RetryInfo(retry_delay=Duration(seconds=0, nanos=50_000_000))
            context.set_trailing_metadata(
                (("google.rpc.retryinfo-bin", retry.SerializeToString()),)
            )
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver warming up")
        self.received.keep(self.signal, request)
        return self.response_class()


class GrpcReceiver:
    """An OTLP/gRPC receiver on 127.0.0.1, port chosen by the system.

    Args:
        fail_first: refuse this many first calls with UNAVAILABLE (with a
            50 ms RetryInfo delay, so retries stay quick).
        tls: PEM certificate and key files; the receiver then serves TLS
            only, and ``endpoint`` is ``https://localhost:<port>``.
    """

    def __init__(self, fail_first: int = 0, tls: tuple[str, str] | None = None):
        self.received = Received(fail_first=fail_first)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        trace_grpc.add_TraceServiceServicer_to_server(
            _GrpcService("spans", self.received), self.server
        )
        metrics_grpc.add_MetricsServiceServicer_to_server(
            _GrpcService("metrics", self.received), self.server
        )
        logs_grpc.add_LogsServiceServicer_to_server(
            _GrpcService("logs", self.received), self.server
        )
        if tls is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
            self.endpoint = f"http://127.0.0.1:{self.port}"
        else:
            certificate, key = (Path(path).read_bytes() for path in tls)
            credentials = grpc.ssl_server_credentials([(key, certificate)])
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
            self.endpoint = f"https://localhost:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None).wait(5)


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    received: Received
    paths = {path: signal for signal, (_, _, _, path) in SIGNALS.items()}

    def do_POST(self) -> None:  # noqa: N802
        signal = self.paths.get(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if signal is None:
            self._reply(404, b"")
            return
        if not self.received.admit():
            self._reply(503, b"", {"Retry-After": "0"})
            return
        with self.received.lock:
            self.received.headers.append(
                {key.lower(): value for key, value in self.headers.items()}
            )
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        self.received.encodings.append(encoding)
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request_class, response_class, _, _ = SIGNALS[signal]
        request = request_class()
        try:
            request.ParseFromString(body)
        except Exception:  # noqa: BLE001 - a bad body is the client's fault
            self._reply(400, b"")
            return
        self.received.keep(signal, request)
        self._reply(200, response_class().SerializeToString())

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class HttpReceiver:
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1 serving /v1/<signal>.

    Args:
        fail_first: answer this many first calls with 503 and
            ``Retry-After: 0``.
        tls: PEM certificate and key files; the receiver then serves HTTPS,
            and ``endpoint`` is ``https://localhost:<port>``.
    """

    def __init__(self, fail_first: int = 0, tls: tuple[str, str] | None = None):
        self.received = Received(fail_first=fail_first)
        handler = type("Handler", (_HttpHandler,), {"received": self.received})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(
                self.server.socket, server_side=True
            )
            self.endpoint = f"https://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
