"""A server's worker thread: answers one request at a time.

Each worker has a REP socket connected to its server's DEALER and a SUB
socket connected to the proxy's terminator. For every request it extracts
the caller's trace context, opens a SERVER span, computes the prime in a
child span and replies. A malformed request gets an error reply naming the
problem; nothing a peer sends can stop the worker.
"""

from __future__ import annotations

import logging
import threading
import time

import zmq
from opentelemetry import metrics, trace

from otelzmq import protocol
from otelzmq import semconv as sc
from otelzmq.exceptions import ProtocolError
from otelzmq.host import HostConsole
from otelzmq.primes import nth_prime
from otelzmq.propagation import extract_context, inject_context

logger = logging.getLogger(__name__)

POLL_INTERVAL_MS = 200


class Worker:
    """One worker's sockets and loop; :meth:`run` is the thread's target.

    Args:
        console: Where the worker tells its story.
        index: The worker's number within its server, from 1.
        context: The server's ZeroMQ context (inproc needs the same one).
        workers_endpoint: The server's DEALER endpoint.
        terminator_endpoint: The proxy's PUB endpoint.
        stop: Set by the server to stop every worker.
        max_nth: The largest n computed.
    """

    def __init__(
        self,
        console: HostConsole,
        index: int,
        context: zmq.Context,
        workers_endpoint: str,
        terminator_endpoint: str,
        stop: threading.Event,
        max_nth: int,
    ) -> None:
        self._console = console
        self._index = index
        self._context = context
        self._workers_endpoint = workers_endpoint
        self._terminator_endpoint = terminator_endpoint
        self._stop = stop
        self._max_nth = max_nth
        self._tracer = trace.get_tracer(__name__)
        meter = metrics.get_meter(__name__)
        self._compute_duration = meter.create_histogram(
            sc.WORKER_COMPUTE_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS,
            description="Time spent computing one nth prime",
        )
        self._active = meter.create_up_down_counter(
            sc.WORKER_ACTIVE_REQUESTS,
            unit="{request}",
            description="Requests a worker is handling right now",
        )

    def run(self) -> None:
        """Serve requests until KILL or the server's stop event."""
        rep = self._context.socket(zmq.REP)
        terminator = self._context.socket(zmq.SUB)
        rep.linger = terminator.linger = 0
        try:
            self._console.say("Connecting to the terminator...")
            terminator.connect(self._terminator_endpoint)
            terminator.subscribe(protocol.KILL)
            rep.connect(self._workers_endpoint)

            poller = zmq.Poller()
            poller.register(rep, zmq.POLLIN)
            poller.register(terminator, zmq.POLLIN)
            while not self._stop.is_set():
                events = dict(poller.poll(POLL_INTERVAL_MS))
                if events.get(rep):
                    rep.send_multipart(self.handle(rep.recv_multipart()))
                if events.get(terminator) and terminator.recv() == protocol.KILL:
                    logger.debug("Worker %d received KILL", self._index)
                    break
        except Exception:
            logger.exception("Worker %d failed", self._index)
        finally:
            rep.close()
            terminator.close()

    def handle(self, frames: list[bytes]) -> list[bytes]:
        """Answer one request; always returns a reply, never raises."""
        context_frame = frames[0] if frames else b""
        parent = extract_context(context_frame)
        self._active.add(1)
        try:
            with self._tracer.start_as_current_span(
                sc.SPAN_RESPONSE,
                context=parent,
                kind=trace.SpanKind.SERVER,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                span.set_attributes(
                    {
                        sc.MESSAGING_SYSTEM: sc.MESSAGING_SYSTEM_ZEROMQ,
                        sc.MESSAGING_OPERATION_TYPE: "process",
                        sc.MESSAGING_DESTINATION_NAME: "workers",
                        sc.MESSAGING_BODY_SIZE: sum(len(f) for f in frames[1:]),
                        sc.WORKER: self._index,
                    }
                )
                return self._answer(frames, span)
        finally:
            self._active.add(-1)

    def _answer(self, frames: list[bytes], span: trace.Span) -> list[bytes]:
        try:
            _, nth = protocol.decode_request(frames, self._max_nth)
        except ProtocolError as error:
            self._console.say("Refused a request: %s", error, level=logging.WARNING)
            span.set_status(trace.StatusCode.ERROR, str(error))
            span.set_attribute(sc.ERROR_TYPE, "invalid_request")
            return protocol.encode_error(inject_context(), str(error))

        span.set_attribute(sc.NTH, nth)
        self._console.say("Received nth=%d", nth)
        started = time.perf_counter()
        try:
            with self._tracer.start_as_current_span(sc.SPAN_COMPUTE) as compute:
                compute.set_attribute(sc.NTH, nth)
                prime = nth_prime(nth)
                compute.set_attribute(sc.PRIME, prime)
        except Exception as error:  # never let one request kill the worker
            logger.exception("Computing the %dth prime failed", nth)
            span.set_status(trace.StatusCode.ERROR, f"internal error: {error}")
            span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
            return protocol.encode_error(inject_context(), "internal error")
        finally:
            self._compute_duration.record(time.perf_counter() - started)

        span.set_attribute(sc.PRIME, prime)
        self._console.say("Replied %s prime = %d", protocol.ordinal(nth), prime)
        return protocol.encode_reply(inject_context(), prime)
