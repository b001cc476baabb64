"""The client: asks for primes through the proxy, patiently but not forever.

A client holds a DEALER connected to the proxy's connector, on which it
sends ``CONNECT`` first, a ``HEARTBEAT`` every second while it works and
``DISCONNECT`` last, and a REQ socket connected to the proxy's frontend.

Requests follow the ZeroMQ guide's Lazy Pirate pattern: send, poll for the
reply with a timeout, and on timeout close the REQ socket (its state
machine is stuck waiting for a reply), open a new one and send again, a
bounded number of times. When every attempt has failed the client reports
the request as failed and gives up on the rest: the proxy or the servers are
evidently gone.

Each request is one trace: a CLIENT span ``get-nth-prime`` with one child
span per attempt, whose context travels in the request's context frame.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import zmq
from opentelemetry import metrics, trace

from otelzmq import protocol
from otelzmq import semconv as sc
from otelzmq.config import (
    ProxyAddress,
    add_port_arguments,
    add_proxy_host_argument,
    add_setting,
    positive_int,
    proxy_address_from_args,
)
from otelzmq.exceptions import ProtocolError, RequestFailed
from otelzmq.host import HostConsole, run_host
from otelzmq.propagation import inject_context
from otelzmq.sockets import limit_message_size, receive

logger = logging.getLogger(__name__)

DEFAULT_REQUESTS = 10
#: The original system's sequence: n = 1, 1001, 2001, ...
NTH_START = 1
NTH_STEP = 1000

#: Seconds to wait for a reply before trying again.
DEFAULT_REQUEST_TIMEOUT = 2.5
#: Attempts per request, the first one included.
DEFAULT_ATTEMPTS = 3
#: Seconds between heartbeats on the connector socket.
HEARTBEAT_INTERVAL = 1.0


@dataclass(frozen=True)
class Answer:
    """The outcome of one request."""

    nth: int
    prime: int | None
    error: str | None
    attempts: int


def default_sequence(count: int) -> list[int]:
    """Return the original system's n values: 1, 1001, 2001, ... (``count``)."""
    return [NTH_START + NTH_STEP * i for i in range(count)]


class Client:
    """A client's sockets and request loop.

    Args:
        console: Where the client tells its story.
        proxy: Where the proxy is.
        name: The client's name, sent with ``CONNECT``.
        request_timeout: Seconds to wait for each reply.
        attempts: Attempts per request, at least 1.
        context: The ZeroMQ context (default: the global one).
    """

    def __init__(
        self,
        console: HostConsole,
        proxy: ProxyAddress,
        name: str,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        context: zmq.Context | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, not {request_timeout}")
        self._console = console
        self._proxy = proxy
        self._name = name
        self._timeout = request_timeout
        self._attempts = attempts
        self._context = context or zmq.Context.instance()
        self._request: zmq.Socket | None = None
        self._last_heartbeat = 0.0

        self._tracer = trace.get_tracer(__name__)
        meter = metrics.get_meter(__name__)
        self._duration = meter.create_histogram(
            sc.CLIENT_REQUEST_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
            description="Time from the first attempt to the answer",
        )
        self._requests = meter.create_counter(
            sc.CLIENT_REQUESTS,
            unit="{request}",
            description="Requests by outcome: ok, error (error reply), failed",
        )

        self.connector = self._context.socket(zmq.DEALER)
        self.connector.linger = 1000  # let DISCONNECT leave before closing

    def connect(self) -> None:
        """Announce this client to the proxy and open the request socket."""
        self._console.say("Connecting to the proxy")
        self.connector.connect(self._proxy.endpoint("connector"))
        self.connector.send_multipart([protocol.CONNECT, self._name.encode()])
        self._last_heartbeat = time.monotonic()
        self._open_request_socket()

    def disconnect(self) -> None:
        """Say goodbye to the proxy and close both sockets."""
        try:
            self.connector.send_multipart([protocol.DISCONNECT, self._name.encode()])
        finally:
            self._close_request_socket()
            self.connector.close()

    def ask_all(self, values: Iterable[int]) -> list[Answer]:
        """Ask for each n in turn; stop at the first request that fails.

        Returns:
            The answers received, error replies included.

        Raises:
            RequestFailed: When a request got no reply after every attempt.
        """
        answers = []
        for nth in values:
            answers.append(self.ask(nth))
        return answers

    def ask(self, nth: int) -> Answer:
        """Ask for the nth prime, retrying as the Lazy Pirate does.

        Raises:
            RequestFailed: When no attempt got a usable reply.
        """
        started = time.perf_counter()
        with self._client_span(sc.SPAN_REQUEST, nth) as span:
            self._console.say("Requesting nth=%d", nth)
            try:
                answer = self._attempt_until_answered(nth)
            except RequestFailed as failure:
                span.set_status(trace.StatusCode.ERROR, failure.reason)
                span.set_attribute(sc.ERROR_TYPE, "timeout")
                span.set_attribute(sc.ATTEMPTS, failure.attempts)
                self._record("failed", started)
                self._console.say("%s", failure, level=logging.ERROR)
                raise

            span.set_attribute(sc.ATTEMPTS, answer.attempts)
            if answer.error is not None:
                span.set_status(trace.StatusCode.ERROR, answer.error)
                span.set_attribute(sc.ERROR_TYPE, "error_reply")
                self._record("error", started)
                self._console.say(
                    "Server refused nth=%d: %s",
                    nth,
                    answer.error,
                    level=logging.WARNING,
                )
            else:
                span.set_attribute(sc.PRIME, answer.prime)
                self._record("ok", started)
                self._console.say(
                    "Received %s prime = %d", protocol.ordinal(nth), answer.prime
                )
            return answer

    def _attempt_until_answered(self, nth: int) -> Answer:
        reason = "no attempt made"
        for attempt in range(1, self._attempts + 1):
            with self._client_span(sc.SPAN_ATTEMPT, nth) as span:
                span.set_attribute(sc.ATTEMPT, attempt)
                frames = protocol.encode_request(inject_context(), nth)
                span.set_attribute(sc.MESSAGING_BODY_SIZE, len(frames[1]))
                self._request_socket().send_multipart(frames)

                reply = self._wait_for_reply()
                if reply is None:
                    reason = f"no reply within {self._timeout:g} s"
                elif isinstance(reply, ProtocolError):
                    reason = f"malformed reply: {reply}"
                else:
                    if reply.error is not None:
                        span.set_status(trace.StatusCode.ERROR, reply.error)
                        span.set_attribute(sc.ERROR_TYPE, "error_reply")
                    return Answer(nth, reply.prime, reply.error, attempt)

                span.set_status(trace.StatusCode.ERROR, reason)
                span.set_attribute(sc.ERROR_TYPE, "timeout")

            # The REQ socket still waits for its reply: drop it, open anew.
            self._close_request_socket()
            self._open_request_socket()
            if attempt < self._attempts:
                self._console.say(
                    "No usable reply for nth=%d (%s); retrying (%d of %d)",
                    nth,
                    reason,
                    attempt + 1,
                    self._attempts,
                    level=logging.WARNING,
                )
        raise RequestFailed(nth, self._attempts, reason)

    def _wait_for_reply(self) -> protocol.Reply | ProtocolError | None:
        """Poll for a reply, sending heartbeats meanwhile; None on timeout."""
        socket = self._request_socket()
        deadline = time.monotonic() + self._timeout
        while True:
            self._heartbeat()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            slice_ms = int(min(remaining, HEARTBEAT_INTERVAL) * 1000) + 1
            if socket.poll(slice_ms, zmq.POLLIN):
                frames, peer = receive(socket)
                span = trace.get_current_span()
                if peer:
                    span.set_attribute(sc.NETWORK_PEER_ADDRESS, peer)
                try:
                    return protocol.decode_reply(frames)
                except ProtocolError as error:
                    logger.warning("Malformed reply: %s", error)
                    return error

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL:
            self.connector.send_multipart([protocol.HEARTBEAT, self._name.encode()])
            self._last_heartbeat = now

    def _request_socket(self) -> zmq.Socket:
        if self._request is None:
            self._open_request_socket()
        assert self._request is not None  # for the type checker
        return self._request

    def _open_request_socket(self) -> None:
        socket = self._context.socket(zmq.REQ)
        socket.linger = 0
        limit_message_size(socket)
        socket.connect(self._proxy.endpoint("frontend"))
        self._request = socket

    def _close_request_socket(self) -> None:
        if self._request is not None:
            self._request.close()
            self._request = None

    def _client_span(self, name: str, nth: int) -> AbstractContextManager[trace.Span]:
        """Start a CLIENT span whose status the client sets itself."""
        return self._tracer.start_as_current_span(
            name,
            kind=trace.SpanKind.CLIENT,
            attributes=self._base_attributes(nth),
            record_exception=False,
            set_status_on_exception=False,
        )

    def _base_attributes(self, nth: int) -> dict[str, str | int]:
        return {
            sc.MESSAGING_SYSTEM: sc.MESSAGING_SYSTEM_ZEROMQ,
            sc.MESSAGING_OPERATION_TYPE: "send",
            sc.MESSAGING_DESTINATION_NAME: "frontend",
            sc.SERVER_ADDRESS: self._proxy.host,
            sc.SERVER_PORT: self._proxy.ports.frontend,
            sc.NETWORK_TRANSPORT: "tcp",
            sc.NTH: nth,
        }

    def _record(self, outcome: str, started: float) -> None:
        attributes = {sc.OUTCOME: outcome}
        self._requests.add(1, attributes)
        self._duration.record(time.perf_counter() - started, attributes)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "client",
        help="run a client that asks for nth primes",
        description="Connect to the proxy, ask for primes and print each one.",
    )
    add_proxy_host_argument(parser)
    add_port_arguments(parser)
    values = parser.add_mutually_exclusive_group()
    add_setting(
        values,
        "--requests",
        "REQUESTS",
        DEFAULT_REQUESTS,
        "ask for n = 1, 1001, 2001, ... K times",
        type=positive_int,
        metavar="K",
    )
    values.add_argument(
        "--nth",
        type=int,
        nargs="+",
        metavar="N",
        help="ask for these values of n instead",
    )
    add_setting(
        parser,
        "--timeout",
        "REQUEST_TIMEOUT",
        DEFAULT_REQUEST_TIMEOUT,
        "wait this long for each reply",
        type=float,
        metavar="SECONDS",
    )
    add_setting(
        parser,
        "--attempts",
        "ATTEMPTS",
        DEFAULT_ATTEMPTS,
        "attempts per request before giving up",
        type=positive_int,
        metavar="N",
    )
    from otelzmq.telemetry import add_telemetry_arguments

    add_telemetry_arguments(parser, "client")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    values: Sequence[int] = args.nth or default_sequence(args.requests)

    def body(console: HostConsole) -> int:
        client = Client(
            console,
            proxy_address_from_args(args),
            args.name,
            request_timeout=args.timeout,
            attempts=args.attempts,
        )
        client.connect()
        try:
            answers = client.ask_all(values)
        except RequestFailed:
            console.say("Giving up: the proxy or the servers do not answer")
            return 1
        except KeyboardInterrupt:
            logger.info("Client interrupted")
            return 130
        finally:
            client.disconnect()
        return 0 if all(answer.error is None for answer in answers) else 1

    return run_host("client", args, body)
