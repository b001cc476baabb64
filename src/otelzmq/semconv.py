"""Names of spans, attributes and instruments, in one place.

Attribute names follow OpenTelemetry's messaging and network semantic
conventions; the project's own attributes share the ``otelzmq.`` prefix.
Span names keep those of the original C system so its users recognise them,
with ``get-nth-prime-attempt`` and ``compute-nth-prime`` added.
"""

from __future__ import annotations

# Span names.
SPAN_REQUEST = "get-nth-prime"
SPAN_ATTEMPT = "get-nth-prime-attempt"
SPAN_PROXY_REQUEST = "proxy-frontend-to-backend"
SPAN_PROXY_REPLY = "proxy-backend-to-frontend"
SPAN_RESPONSE = "get-nth-prime-response"
SPAN_COMPUTE = "compute-nth-prime"

# Semantic-convention attributes.
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_BODY_SIZE = "messaging.message.body.size"
NETWORK_PEER_ADDRESS = "network.peer.address"
NETWORK_PEER_PORT = "network.peer.port"
NETWORK_TRANSPORT = "network.transport"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

MESSAGING_SYSTEM_ZEROMQ = "zeromq"

# The project's own attributes.
NTH = "otelzmq.nth"
PRIME = "otelzmq.prime"
ATTEMPT = "otelzmq.attempt"
ATTEMPTS = "otelzmq.attempts"
WORKER = "otelzmq.worker"
CLIENT_ID = "otelzmq.client.id"

# Instruments.
CLIENT_REQUEST_DURATION = "otelzmq.client.request.duration"
CLIENT_REQUESTS = "otelzmq.client.requests"
PROXY_CONNECTED_CLIENTS = "otelzmq.proxy.connected_clients"
PROXY_FORWARDED_MESSAGES = "otelzmq.proxy.forwarded_messages"
WORKER_COMPUTE_DURATION = "otelzmq.worker.compute.duration"
WORKER_ACTIVE_REQUESTS = "otelzmq.worker.active_requests"
OUTCOME = "otelzmq.outcome"
DIRECTION = "otelzmq.direction"

#: Histogram bucket boundaries for durations in seconds, from 0.5 ms to 10 s:
#: the SDK's defaults start at 5 and would put every request in one bucket.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
