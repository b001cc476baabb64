"""The proxy: a traced ROUTER/DEALER queue between clients and servers.

It binds four sockets:

- ``frontend`` (ROUTER, port 5559): clients' REQ sockets send requests here.
- ``backend`` (DEALER, port 5560): servers' ROUTER sockets connect here and
  take requests in turn.
- ``connector`` (ROUTER, port 5561): clients announce themselves with
  ``CONNECT``, prove they are alive with ``HEARTBEAT`` and leave with
  ``DISCONNECT``.
- ``terminator`` (PUB, port 5562): ``KILL`` is published when the proxy
  stops, so servers and their workers stop too.

Every forwarded message gets a span, a child of the context its context
frame carries, and leaves with that span's context in the frame instead.

The proxy stops (and publishes ``KILL``) when its clients are done. With
``--expect-clients N`` that is when N clients have connected and none is
left. Without it, it is when clients have come and gone and none has
connected again for the idle grace period. A client that dies without
``DISCONNECT`` is forgotten once it has missed heartbeats for
``HEARTBEAT_TIMEOUT`` seconds, so it cannot keep the system up forever.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

import zmq
from opentelemetry import metrics, trace

from otelzmq import protocol
from otelzmq import semconv as sc
from otelzmq.config import (
    DEFAULT_BIND_ADDRESS,
    ProxyPorts,
    add_port_arguments,
    add_setting,
    ports_from_args,
    tcp_endpoint,
)
from otelzmq.host import HostConsole, run_host
from otelzmq.propagation import extract_context, inject_context
from otelzmq.sockets import bind, limit_message_size, receive

logger = logging.getLogger(__name__)

#: Seconds without any connected client before the proxy stops, once
#: clients have come and gone (when the expected count is not given).
DEFAULT_IDLE_GRACE = 10.0

#: Seconds of silence after which a client counts as gone. Clients send a
#: heartbeat every second.
HEARTBEAT_TIMEOUT = 5.0

#: How long the poll loop sleeps at most, so timers and signals are served.
POLL_INTERVAL_MS = 200

#: How long KILL may wait in the PUB socket's queue when the proxy closes.
KILL_LINGER_MS = 1000


@dataclass
class _Client:
    name: str
    last_seen: float


class Proxy:
    """The proxy's sockets and its forwarding loop.

    Args:
        console: Where the proxy tells its story.
        bind_address: The address the four sockets bind to.
        ports: The four ports.
        expect_clients: Stop once this many clients have come and gone;
            0 to rely on the idle grace period instead.
        idle_grace: Seconds with no client before stopping (see above).
        heartbeat_timeout: Seconds of silence before a client is dropped.
        context: The ZeroMQ context to use (default: the global one).
    """

    def __init__(
        self,
        console: HostConsole,
        bind_address: str = DEFAULT_BIND_ADDRESS,
        ports: ProxyPorts | None = None,
        expect_clients: int = 0,
        idle_grace: float = DEFAULT_IDLE_GRACE,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        context: zmq.Context | None = None,
    ) -> None:
        if expect_clients < 0:
            raise ValueError(f"expect_clients must be 0 or more, not {expect_clients}")
        self._console = console
        self._bind_address = bind_address
        self._ports = ports or ProxyPorts()
        self._expect_clients = expect_clients
        self._idle_grace = idle_grace
        self._heartbeat_timeout = heartbeat_timeout
        self._context = context or zmq.Context.instance()
        self._clients: dict[bytes, _Client] = {}
        self._clients_seen = 0
        self._idle_since: float | None = None

        self._tracer = trace.get_tracer(__name__)
        meter = metrics.get_meter(__name__)
        self._connected = meter.create_up_down_counter(
            sc.PROXY_CONNECTED_CLIENTS,
            unit="{client}",
            description="Clients connected to the proxy",
        )
        self._forwarded = meter.create_counter(
            sc.PROXY_FORWARDED_MESSAGES,
            unit="{message}",
            description="Messages forwarded between clients and servers",
        )

        self.frontend = self._context.socket(zmq.ROUTER)
        self.backend = self._context.socket(zmq.DEALER)
        self.connector = self._context.socket(zmq.ROUTER)
        self.terminator = self._context.socket(zmq.PUB)
        for socket in (self.frontend, self.connector):
            limit_message_size(socket)
        for socket in (self.frontend, self.backend, self.connector):
            socket.linger = 0
        self.terminator.linger = KILL_LINGER_MS

    @property
    def connected_clients(self) -> int:
        return len(self._clients)

    def bind(self) -> None:
        """Bind the four sockets, in the original order.

        Raises:
            PortInUseError: If one of the ports is taken.
        """
        self._console.say("Starting proxy...")
        for role, socket in (
            ("connector", self.connector),
            ("terminator", self.terminator),
            ("frontend", self.frontend),
            ("backend", self.backend),
        ):
            self._console.say("Binding proxy to %s...", role)
            endpoint = tcp_endpoint(self._bind_address, getattr(self._ports, role))
            bind(socket, role, endpoint)
        logger.info("Proxy bound on %s, ports %s", self._bind_address, self._ports)

    def run(self) -> None:
        """Forward messages until the clients are done or on interrupt.

        Publishes ``KILL`` on the way out, whatever the reason.
        """
        poller = zmq.Poller()
        poller.register(self.backend, zmq.POLLIN)
        poller.register(self.connector, zmq.POLLIN)
        frontend_polled = False
        try:
            while not self._should_stop():
                # Take requests only while a server can receive them; until
                # then they wait in the clients' sockets.
                can_forward = bool(self.backend.getsockopt(zmq.EVENTS) & zmq.POLLOUT)
                if can_forward != frontend_polled:
                    if can_forward:
                        poller.register(self.frontend, zmq.POLLIN)
                    else:
                        poller.unregister(self.frontend)
                    frontend_polled = can_forward

                events = dict(poller.poll(POLL_INTERVAL_MS))
                if events.get(self.connector):
                    self._handle_connector()
                if events.get(self.frontend):
                    self._forward_request()
                if events.get(self.backend):
                    self._forward_reply()
                self._expire_silent_clients()
        finally:
            self._publish_kill()

    def close(self) -> None:
        for socket in (self.frontend, self.backend, self.connector, self.terminator):
            socket.close()

    # -- connector -----------------------------------------------------

    def _handle_connector(self) -> None:
        frames = self.connector.recv_multipart()
        identity, body = frames[0], frames[1:]
        command = body[0] if body else b""
        now = time.monotonic()
        client = self._clients.get(identity)

        if command == protocol.CONNECT or (
            command == protocol.HEARTBEAT and client is None
        ):
            name = _client_name(identity, body[1] if len(body) > 1 else b"")
            if client is None:
                self._clients[identity] = _Client(name, now)
                self._clients_seen += 1
                self._connected.add(1)
                self._console.say(
                    "Client %s connected (%d connected)", name, len(self._clients)
                )
            else:
                client.last_seen = now
        elif command == protocol.HEARTBEAT and client is not None:
            client.last_seen = now
        elif command == protocol.DISCONNECT:
            if client is not None:
                self._forget(identity)
                self._console.say(
                    "Client %s disconnected (%d connected)",
                    client.name,
                    len(self._clients),
                )
        else:
            logger.warning(
                "Ignoring an unknown connector message %r (%d frames)",
                command[:32],
                len(body),
            )

    def _forget(self, identity: bytes) -> None:
        del self._clients[identity]
        self._connected.add(-1)
        if not self._clients:
            self._idle_since = time.monotonic()

    def _expire_silent_clients(self) -> None:
        deadline = time.monotonic() - self._heartbeat_timeout
        for identity, client in list(self._clients.items()):
            if client.last_seen < deadline:
                self._forget(identity)
                self._console.say(
                    "Client %s went silent for %.0f s; counting it as gone "
                    "(%d connected)",
                    client.name,
                    self._heartbeat_timeout,
                    len(self._clients),
                    level=logging.WARNING,
                )

    def _should_stop(self) -> bool:
        if self._clients or not self._clients_seen:
            return False
        if self._expect_clients:
            return self._clients_seen >= self._expect_clients
        idle_for = time.monotonic() - (self._idle_since or time.monotonic())
        return idle_for >= self._idle_grace

    # -- forwarding ----------------------------------------------------

    def _forward_request(self) -> None:
        frames, peer = receive(self.frontend)
        envelope, body = _split_envelope(frames)
        if not body:
            logger.warning("Refusing a request without a REQ envelope from %s", peer)
            reply = protocol.encode_error(
                b"", "malformed request: expected an empty delimiter frame"
            )
            self.frontend.send_multipart([frames[0], b"", *reply])
            return
        self._forward(sc.SPAN_PROXY_REQUEST, "frontend", envelope, body, peer)
        self._forwarded.add(1, {sc.DIRECTION: "request"})

    def _forward_reply(self) -> None:
        frames, peer = receive(self.backend)
        envelope, body = _split_envelope(frames)
        if not body:
            logger.warning("Dropping a reply without an envelope from a server")
            return
        self._forward(sc.SPAN_PROXY_REPLY, "backend", envelope, body, peer)
        self._forwarded.add(1, {sc.DIRECTION: "reply"})

    def _forward(
        self,
        span_name: str,
        source: str,
        envelope: list[bytes],
        body: list[bytes],
        peer: str | None,
    ) -> None:
        """Send a message on to the other side inside a span of its own.

        The span continues the trace of the message's context frame, and the
        message leaves with the span's context in that frame instead.
        """
        destination = "backend" if source == "frontend" else "frontend"
        parent = extract_context(body[0])
        with self._tracer.start_as_current_span(
            span_name, context=parent, kind=trace.SpanKind.INTERNAL
        ) as span:
            span.set_attributes(
                _message_attributes(source, destination, body, peer, self._ports)
            )
            is_reply = source == "backend"
            if is_reply and len(body) > 1 and body[1] == protocol.STATUS_ERROR:
                span.set_status(trace.StatusCode.ERROR, _text(body[-1]))
            socket = self.backend if destination == "backend" else self.frontend
            socket.send_multipart([*envelope, inject_context(), *body[1:]])

    def _publish_kill(self) -> None:
        self.terminator.send(protocol.KILL)
        self._console.say("Sent kill signal; shutting down")


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes] | None]:
    """Split routing frames from the body at the first empty frame."""
    try:
        delimiter = frames.index(b"", 1)
    except ValueError:
        return frames, None
    return frames[: delimiter + 1], frames[delimiter + 1 :]


def _message_attributes(
    source: str,
    destination: str,
    body: list[bytes],
    peer: str | None,
    ports: ProxyPorts,
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        sc.MESSAGING_SYSTEM: sc.MESSAGING_SYSTEM_ZEROMQ,
        sc.MESSAGING_OPERATION_TYPE: "process",
        sc.MESSAGING_OPERATION_NAME: f"forward {source} to {destination}",
        sc.MESSAGING_DESTINATION_NAME: destination,
        sc.MESSAGING_BODY_SIZE: sum(len(frame) for frame in body[1:]),
        sc.NETWORK_TRANSPORT: "tcp",
        sc.SERVER_PORT: getattr(ports, source),
    }
    if peer:
        attributes[sc.NETWORK_PEER_ADDRESS] = peer
    return attributes


def _client_name(identity: bytes, name: bytes) -> str:
    text = name.decode("utf-8", errors="replace").strip()
    if text and text.isprintable() and len(text) <= 64:
        return text
    return identity.hex()


def _text(frame: bytes) -> str:
    return frame.decode("utf-8", errors="replace")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="run the proxy between clients and servers",
        description="Bind the frontend, backend, connector and terminator "
        "sockets and forward requests and replies, tracing each one.",
    )
    add_setting(
        parser,
        "--bind",
        "BIND_ADDRESS",
        DEFAULT_BIND_ADDRESS,
        "address to bind the four sockets to, * for all",
        metavar="ADDR",
    )
    add_port_arguments(parser)
    add_setting(
        parser,
        "--expect-clients",
        "EXPECT_CLIENTS",
        0,
        "stop once N clients have connected and all have left",
        type=int,
        metavar="N",
    )
    add_setting(
        parser,
        "--idle-grace",
        "IDLE_GRACE",
        DEFAULT_IDLE_GRACE,
        "without --expect-clients, stop after this long with no client once "
        "clients have come and gone",
        type=float,
        metavar="SECONDS",
    )
    add_setting(
        parser,
        "--heartbeat-timeout",
        "HEARTBEAT_TIMEOUT",
        HEARTBEAT_TIMEOUT,
        "forget a client silent for this long",
        type=float,
        metavar="SECONDS",
    )
    from otelzmq.telemetry import add_telemetry_arguments

    add_telemetry_arguments(parser, "proxy")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    def body(console: HostConsole) -> int:
        proxy = Proxy(
            console,
            bind_address=args.bind,
            ports=ports_from_args(args),
            expect_clients=args.expect_clients,
            idle_grace=args.idle_grace,
            heartbeat_timeout=args.heartbeat_timeout,
        )
        try:
            proxy.bind()
            proxy.run()
        except KeyboardInterrupt:
            logger.info("Proxy interrupted")
        finally:
            proxy.close()
        return 0

    return run_host("proxy", args, body)
