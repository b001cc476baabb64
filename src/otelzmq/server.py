"""The server: relays requests from the proxy to a pool of worker threads.

A server holds three sockets: a ROUTER connected to the proxy's backend, a
DEALER bound on ``inproc://`` for its workers, and a SUB connected to the
proxy's terminator. Each worker thread (see :mod:`otelzmq.worker`) has a REP
socket connected to that DEALER and its own SUB to the terminator. The
server stops when the proxy publishes ``KILL``, or on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from otelzmq import protocol
from otelzmq.config import (
    DEFAULT_MAX_NTH,
    ProxyAddress,
    add_port_arguments,
    add_proxy_host_argument,
    add_setting,
    positive_int,
    proxy_address_from_args,
)
from otelzmq.host import HostConsole, run_host
from otelzmq.sockets import limit_message_size
from otelzmq.worker import Worker

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
POLL_INTERVAL_MS = 200

#: The story line a server prints once its sockets and workers are set up;
#: the launcher waits for it before starting clients.
READY_MESSAGE = "Connecting client to workers..."

#: Seconds the server waits for its workers to finish their current request.
WORKER_JOIN_TIMEOUT = 5.0

#: Seconds without a connection to the proxy, once connected, before the
#: server stops by itself: a server that missed KILL must not run for ever.
DEFAULT_PROXY_LOSS_TIMEOUT = 10.0

_server_ids = itertools.count(1)


class Server:
    """A server's relay between the proxy and its workers.

    Args:
        console: Where the server tells its story.
        proxy: Where the proxy is.
        workers: How many worker threads to start.
        max_nth: The largest n the workers compute.
        proxy_loss_timeout: Stop after this many seconds without the proxy,
            once it had been reached; 0 to wait for KILL only.
        context: The ZeroMQ context (default: the global one).
    """

    def __init__(
        self,
        console: HostConsole,
        proxy: ProxyAddress,
        workers: int = DEFAULT_WORKERS,
        max_nth: int = DEFAULT_MAX_NTH,
        proxy_loss_timeout: float = DEFAULT_PROXY_LOSS_TIMEOUT,
        context: zmq.Context | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a server needs at least one worker, not {workers}")
        self._console = console
        self._proxy = proxy
        self._worker_count = workers
        self._max_nth = max_nth
        self._proxy_loss_timeout = proxy_loss_timeout
        self._proxy_lost_since: float | None = None
        self._context = context or zmq.Context.instance()
        self._workers_endpoint = f"inproc://otelzmq-workers-{next(_server_ids)}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

        self.frontend = self._context.socket(zmq.ROUTER)
        self.workers = self._context.socket(zmq.DEALER)
        self.terminator = self._context.socket(zmq.SUB)
        limit_message_size(self.frontend)
        for socket in (self.frontend, self.workers, self.terminator):
            socket.linger = 0

    def start(self) -> None:
        """Connect to the proxy and start the worker threads."""
        self._console.say("Connecting to the terminator...")
        self.terminator.connect(self._proxy.endpoint("terminator"))
        self.terminator.subscribe(protocol.KILL)
        self._console.say("Connecting to the proxy...")
        self.frontend.connect(self._proxy.endpoint("backend"))
        self.workers.bind(self._workers_endpoint)

        for index in range(1, self._worker_count + 1):
            worker = Worker(
                self._console,
                index,
                self._context,
                self._workers_endpoint,
                self._proxy.endpoint("terminator"),
                self._stop,
                self._max_nth,
            )
            thread = threading.Thread(
                target=worker.run, name=f"worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._console.say(READY_MESSAGE)

    def run(self) -> None:
        """Relay messages both ways until KILL, interrupt or proxy loss."""
        monitor = self.frontend.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
        )
        poller = zmq.Poller()
        for socket in (self.frontend, self.workers, self.terminator, monitor):
            poller.register(socket, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(POLL_INTERVAL_MS))
                if events.get(self.frontend):
                    # [proxy id, client id, "", context, nth] goes on as is;
                    # the worker's REP socket strips and restores the envelope.
                    self.workers.send_multipart(self.frontend.recv_multipart())
                if events.get(self.workers):
                    self.frontend.send_multipart(self.workers.recv_multipart())
                if events.get(self.terminator):
                    if self.terminator.recv() == protocol.KILL:
                        self._console.say("Received kill signal")
                        self._stop.set()
                if events.get(monitor):
                    self._track_proxy(recv_monitor_message(monitor)["event"])
                if self._proxy_gone():
                    self._console.say(
                        "Lost the proxy %g s ago; shutting down",
                        self._proxy_loss_timeout,
                        level=logging.WARNING,
                    )
                    self._stop.set()
        finally:
            self.frontend.disable_monitor()
            monitor.close()

    def _track_proxy(self, event: int) -> None:
        if event == zmq.EVENT_CONNECTED:
            self._proxy_lost_since = None
        elif event == zmq.EVENT_DISCONNECTED:
            logger.info("The connection to the proxy dropped")
            self._proxy_lost_since = time.monotonic()

    def _proxy_gone(self) -> bool:
        if not self._proxy_loss_timeout or self._proxy_lost_since is None:
            return False
        return time.monotonic() - self._proxy_lost_since >= self._proxy_loss_timeout

    def stop(self) -> None:
        """Stop the workers and close the sockets."""
        self._stop.set()
        for thread in self._threads:
            thread.join(WORKER_JOIN_TIMEOUT)
            if thread.is_alive():
                logger.warning("%s did not stop in time", thread.name)
        for socket in (self.frontend, self.workers, self.terminator):
            socket.close()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "server",
        help="run a server with its worker threads",
        description="Take requests from the proxy's backend and answer them "
        "with a pool of worker threads.",
    )
    add_proxy_host_argument(parser)
    add_port_arguments(parser)
    add_setting(
        parser,
        "--workers",
        "WORKERS",
        DEFAULT_WORKERS,
        "worker threads",
        type=positive_int,
        metavar="N",
    )
    add_setting(
        parser,
        "--max-nth",
        "MAX_NTH",
        DEFAULT_MAX_NTH,
        "largest n computed; larger requests get an error reply",
        type=positive_int,
        metavar="N",
    )
    add_setting(
        parser,
        "--proxy-loss-timeout",
        "PROXY_LOSS_TIMEOUT",
        DEFAULT_PROXY_LOSS_TIMEOUT,
        "stop after losing the proxy for this long, 0 to wait for KILL only",
        type=float,
        metavar="SECONDS",
    )
    from otelzmq.telemetry import add_telemetry_arguments

    add_telemetry_arguments(parser, "server")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    def body(console: HostConsole) -> int:
        server = Server(
            console,
            proxy_address_from_args(args),
            workers=args.workers,
            max_nth=args.max_nth,
            proxy_loss_timeout=args.proxy_loss_timeout,
        )
        try:
            server.start()
            server.run()
        except KeyboardInterrupt:
            logger.info("Server interrupted")
        finally:
            server.stop()
        return 0

    return run_host("server", args, body)
