"""Malformed messages sent with raw ZeroMQ sockets: errors, never crashes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import zmq

from otelzmq import protocol
from otelzmq.config import DEFAULT_MAX_MESSAGE_BYTES
from tests.conftest import port_flags, wait_for_port

pytestmark = pytest.mark.slow

MAX_NTH = 100_000
REPLY_TIMEOUT_MS = 10_000


@pytest.fixture
def system(hosts, ports) -> Iterator[tuple]:
    proxy = hosts.start("proxy", *port_flags(ports))
    wait_for_port(ports.frontend, proxy)
    server = hosts.start(
        "server", *port_flags(ports), "--workers", "1", "--max-nth", str(MAX_NTH)
    )
    yield ports, proxy, server


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


def request(context: zmq.Context, port: int, frames: list[bytes]) -> list[bytes]:
    socket = context.socket(zmq.REQ)
    socket.linger = 0
    socket.connect(f"tcp://127.0.0.1:{port}")
    try:
        socket.send_multipart(frames)
        assert socket.poll(REPLY_TIMEOUT_MS), "no reply to a malformed request"
        return socket.recv_multipart()
    finally:
        socket.close()


def assert_still_serving(context: zmq.Context, port: int) -> None:
    reply = protocol.decode_reply(request(context, port, [b"", b"1001"]))
    assert reply.prime == 7927


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"", b"seven"], "nth must be a decimal integer, got 'seven'"),
        ([b"", b"0"], "nth must be at least 1, got 0"),
        ([b"", b"-12"], "nth must be at least 1, got -12"),
        ([b"", str(MAX_NTH + 1).encode()], f"nth must be at most {MAX_NTH}"),
        ([b"", b""], "the nth frame is empty"),
        ([b""], "a request has 2 frames (context, nth), got 1"),
        ([b"", b"5", b"extra"], "a request has 2 frames (context, nth), got 3"),
        ([b"{not json", b"5"], None),
    ],
)
def test_bad_requests_get_an_error_reply(system, context, frames, reason) -> None:
    ports, proxy, server = system
    reply = protocol.decode_reply(request(context, ports.frontend, frames))

    if reason is None:  # a malformed context frame only starts a new trace
        assert reply.prime == 11
    else:
        assert reply.error is not None and reason in reply.error
    assert proxy.poll() is None and server.poll() is None
    assert_still_serving(context, ports.frontend)


def test_a_dealer_without_envelope_gets_an_error(system, context) -> None:
    ports, proxy, _ = system
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(f"tcp://127.0.0.1:{ports.frontend}")
    dealer.send_multipart([b"garbage", b"more"])
    assert dealer.poll(REPLY_TIMEOUT_MS)
    frames = dealer.recv_multipart()
    dealer.close()

    assert frames[0] == b""
    reply = protocol.decode_reply(frames[1:])
    assert "empty delimiter" in (reply.error or "")
    assert_still_serving(context, ports.frontend)


def test_an_oversized_message_is_dropped_and_the_host_lives(system, context) -> None:
    ports, proxy, server = system
    big = context.socket(zmq.REQ)
    big.linger = 0
    big.connect(f"tcp://127.0.0.1:{ports.frontend}")
    big.send_multipart([b"", b"1" * (DEFAULT_MAX_MESSAGE_BYTES + 1)])
    # libzmq disconnects the sender; no reply can come.
    assert not big.poll(1000)
    big.close()

    assert proxy.poll() is None and server.poll() is None
    assert_still_serving(context, ports.frontend)


def test_garbage_on_the_connector_is_ignored(system, context) -> None:
    ports, proxy, _ = system
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 1000
    dealer.connect(f"tcp://127.0.0.1:{ports.connector}")
    dealer.send_multipart([b"HELLO?", b"\x00" * 100])
    dealer.send(b"")
    dealer.close()

    assert_still_serving(context, ports.frontend)
    assert proxy.poll() is None
