"""``otelzmq up``: the whole system on one machine, one process per host.

With no arguments it runs what the original ``docker compose up`` ran: one
proxy, two servers with two workers each and three clients asking for ten
primes each. Every host is its own OS process, started as
``python -m otelzmq <role>``; its standard output and error go to
``<out>/output/<host>/output.log`` and its telemetry to
``<out>/ctf-traces/<host>/``.

The launcher waits for the proxy's ports, starts the servers, then the
clients, and shows a live status line on a terminal. It succeeds when every
client got every answer and every host exited by itself; otherwise it says
which host failed and why, and stops every host it started.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from otelzmq.config import (
    ENV_PREFIX,
    ProxyPorts,
    add_port_arguments,
    add_setting,
    ports_from_args,
    positive_int,
)
from otelzmq.server import READY_MESSAGE

logger = logging.getLogger(__name__)

DEFAULT_CLIENTS = 3
DEFAULT_SERVERS = 2
DEFAULT_WORKERS = 2
DEFAULT_REQUESTS = 10
DEFAULT_TIMEOUT = 120.0
DEFAULT_OUT = "out"

#: Seconds to wait for the proxy to bind its ports.
PROXY_START_TIMEOUT = 15.0
#: Seconds servers get to set up their sockets and workers.
SERVER_START_TIMEOUT = 30.0
#: Seconds the proxy gets to exit after the clients are done.
SHUTDOWN_TIMEOUT = 15.0
#: Seconds servers get to exit after the proxy did, before SIGTERM.
SERVER_STOP_GRACE = 5.0
#: Seconds between SIGTERM and SIGKILL when stopping hosts.
TERMINATE_GRACE = 5.0
STATUS_INTERVAL = 0.2

_PROXY_HOST = "127.0.0.1"
_READY_BYTES = READY_MESSAGE.encode()


@dataclass
class Host:
    """A host process started by the launcher."""

    name: str
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)
    answers: int = 0
    ready: bool = False
    _read_up_to: int = field(default=0, repr=False)

    def scan_log(self) -> None:
        """Read the log's new complete lines and note answers and readiness.

        Only what was appended since the last call is read, so watching a
        long run costs no more than its output.
        """
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._read_up_to)
                data = log.read()
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._read_up_to += len(complete)
        self.answers += complete.count(b"] Received ")
        self.ready = self.ready or _READY_BYTES in complete

    def last_lines(self, count: int = 3) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-count:])


@dataclass(frozen=True)
class Plan:
    """What to run."""

    clients: int = DEFAULT_CLIENTS
    servers: int = DEFAULT_SERVERS
    workers: int = DEFAULT_WORKERS
    requests: int = DEFAULT_REQUESTS
    out: Path = Path(DEFAULT_OUT)
    ports: ProxyPorts = ProxyPorts()
    timeout: float = DEFAULT_TIMEOUT

    @property
    def client_names(self) -> list[str]:
        return [f"client-{i}" for i in range(1, self.clients + 1)]

    @property
    def server_names(self) -> list[str]:
        return [f"server-{i}" for i in range(1, self.servers + 1)]


class LaunchFailed(Exception):
    """The run cannot go on; the message says why."""


class Launcher:
    """Starts, watches and stops the hosts of one run."""

    def __init__(self, plan: Plan, status: IO[str] | None = None) -> None:
        self.plan = plan
        self.hosts: dict[str, Host] = {}
        self._status = status if status is not None else sys.stderr
        self._live = self._status.isatty()
        self._reported: set[str] = set()
        self._started = time.monotonic()

    def run(self) -> int:
        """Run the plan; return 0 when every client got every answer."""
        try:
            self._check_ports_free()
            self._prepare_out()
            # Servers may connect before the proxy binds (ZeroMQ reconnects),
            # so both start at once; clients wait until both are ready.
            proxy = self._start(
                "proxy", "proxy", ["--expect-clients", str(self.plan.clients)]
            )
            servers = [
                self._start("server", name, ["--workers", str(self.plan.workers)])
                for name in self.plan.server_names
            ]
            self._wait_for_ports(proxy)
            self._wait_until_ready(servers)
            for name in self.plan.client_names:
                self._start("client", name, ["--requests", str(self.plan.requests)])
            self._wait_for_clients()
            self._wait_for_shutdown()
        except LaunchFailed as failure:
            self._clear_status()
            self._report(f"otelzmq up failed: {failure}")
            return 1
        except KeyboardInterrupt:
            self._clear_status()
            self._report("Interrupted; stopping every host")
            return 130
        finally:
            self._stop_all()
        elapsed = time.monotonic() - self._started
        total = self.plan.clients * self.plan.requests
        self._report(
            f"All {total} answers received in {elapsed:.1f} s. "
            f"Traces: {self.plan.out / 'ctf-traces'}  "
            f"Logs: {self.plan.out / 'output'}"
        )
        return 0

    # -- start-up ------------------------------------------------------

    def _check_ports_free(self) -> None:
        for role, number in self.plan.ports.as_dict().items():
            with socket.socket() as probe:
                # As libzmq does, so that connections in TIME_WAIT from an
                # earlier run do not count as "in use".
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((_PROXY_HOST, number))
                except OSError:
                    raise LaunchFailed(
                        f"port {number} ({role}) is already in use; stop what "
                        f"holds it or choose another with --{role}-port"
                    ) from None

    def _prepare_out(self) -> None:
        # Earlier runs' hosts would otherwise mix with this run's.
        for sub in ("ctf-traces", "output"):
            target = self.plan.out / sub
            if target.exists():
                logger.info("Removing the previous run's %s", target)
                shutil.rmtree(target)

    def _wait_for_ports(self, proxy: Host) -> None:
        deadline = time.monotonic() + PROXY_START_TIMEOUT
        while not all(
            _port_open(_PROXY_HOST, number)
            for number in self.plan.ports.as_dict().values()
        ):
            if proxy.process.poll() is not None:
                raise LaunchFailed(
                    f"the proxy exited with status {proxy.process.returncode}:\n"
                    f"{proxy.last_lines()}"
                )
            if time.monotonic() > deadline:
                raise LaunchFailed(
                    f"the proxy did not open its ports in {PROXY_START_TIMEOUT:g} s"
                )
            time.sleep(0.05)

    def _start(self, role: str, name: str, extra: list[str]) -> Host:
        log_dir = self.plan.out / "output" / name
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "output.log"
        log_file = log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "otelzmq",
            role,
            "--name",
            name,
            "--out",
            str(self.plan.out),
            *_port_flags(self.plan.ports),
            *extra,
        ]
        if role != "proxy":
            command += ["--proxy-host", _PROXY_HOST]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_host_environment(),
        )
        host = Host(name, role, process, log_path, log_file)
        self.hosts[name] = host
        logger.info("Started %s (pid %d)", name, process.pid)
        return host

    # -- watching ------------------------------------------------------

    def _wait_for_clients(self) -> None:
        deadline = self._started + self.plan.timeout
        clients = [self.hosts[name] for name in self.plan.client_names]
        while True:
            self._show_status(clients)
            for host in self.hosts.values():
                code = host.process.poll()
                if code is not None and code != 0:
                    raise LaunchFailed(
                        f"{host.name} exited with status {code}:\n{host.last_lines()}"
                    )
            if all(host.process.poll() == 0 for host in clients):
                self._clear_status()
                return
            if time.monotonic() > deadline:
                raise LaunchFailed(
                    f"the run did not finish within --timeout {self.plan.timeout:g} s"
                )
            time.sleep(STATUS_INTERVAL)

    def _wait_until_ready(self, servers: list[Host]) -> None:
        """Wait until every server has subscribed to KILL and has workers.

        Clients start only then, so no request waits for a server that is
        still starting and no server can miss the proxy's KILL.
        """
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        waiting = list(servers)
        while waiting:
            for host in list(waiting):
                if host.process.poll() is not None:
                    raise LaunchFailed(
                        f"{host.name} exited with status {host.process.returncode}"
                        f" while starting:\n{host.last_lines()}"
                    )
                host.scan_log()
                if host.ready:
                    waiting.remove(host)
            if time.monotonic() > deadline:
                names = ", ".join(host.name for host in waiting)
                raise LaunchFailed(
                    f"{names} did not start within {SERVER_START_TIMEOUT:g} s"
                )
            time.sleep(0.02)

    def _wait_for_shutdown(self) -> None:
        """Wait for the proxy, then the servers, to stop by themselves.

        A server still running once the proxy is gone missed its KILL; it
        is asked to stop with SIGTERM, which it treats like KILL.
        """
        proxy = self.hosts["proxy"]
        try:
            code = proxy.process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise LaunchFailed(
                f"the proxy did not stop within {SHUTDOWN_TIMEOUT:g} s of the "
                "clients being done"
            ) from None
        if code != 0:
            raise LaunchFailed(
                f"the proxy exited with status {code}:\n{proxy.last_lines()}"
            )

        deadline = time.monotonic() + SERVER_STOP_GRACE
        for host in self.hosts.values():
            try:
                code = host.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s missed the kill signal; sending SIGTERM", host.name)
                host.process.send_signal(signal.SIGTERM)
                try:
                    code = host.process.wait(TERMINATE_GRACE)
                except subprocess.TimeoutExpired:
                    raise LaunchFailed(f"{host.name} ignored SIGTERM") from None
            if code != 0:
                raise LaunchFailed(
                    f"{host.name} exited with status {code}:\n{host.last_lines()}"
                )

    def _show_status(self, clients: list[Host]) -> None:
        """Redraw the status line on a terminal; elsewhere, log milestones."""
        for host in clients:
            host.scan_log()
        finished = [host for host in clients if host.process.poll() is not None]
        if not self._live:
            for host in finished:
                if host.name not in self._reported:
                    self._reported.add(host.name)
                    self._report(
                        f"{host.name} done: {host.answers}/{self.plan.requests} answers"
                    )
            return
        total = self.plan.clients * self.plan.requests
        elapsed = time.monotonic() - self._started
        line = (
            f"up: {sum(host.answers for host in clients)}/{total} answers, "
            f"{len(finished)}/{len(clients)} clients done, "
            f"{self.plan.servers} servers x {self.plan.workers} workers, "
            f"{elapsed:.1f} s"
        )
        self._status.write("\r" + line + "\x1b[K")
        self._status.flush()

    def _clear_status(self) -> None:
        if self._live:
            self._status.write("\r\x1b[K")
            self._status.flush()

    def _report(self, message: str) -> None:
        self._status.write(message + "\n")
        self._status.flush()

    # -- stopping ------------------------------------------------------

    def _stop_all(self) -> None:
        running = [h for h in self.hosts.values() if h.process.poll() is None]
        for host in running:
            host.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + TERMINATE_GRACE
        for host in running:
            try:
                host.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; killing it", host.name)
                host.process.kill()
                host.process.wait()
        for host in self.hosts.values():
            host.log_file.close()


def _port_flags(ports: ProxyPorts) -> list[str]:
    flags = []
    for role, number in ports.as_dict().items():
        flags += [f"--{role}-port", str(number)]
    return flags


def _host_environment() -> dict[str, str]:
    env = dict(os.environ)
    # Each host derives its own trace folder from --name and --out.
    for variable in ("CTF_DIR", "HOST_NAME"):
        env.pop(ENV_PREFIX + variable, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _port_open(host: str, number: int) -> bool:
    try:
        with socket.create_connection((host, number), timeout=0.2):
            return True
    except OSError:
        return False


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run the whole system on this machine (the main command)",
        description="Start a proxy, servers and clients as separate processes, "
        "wait until every client has its answers, and leave traces and logs "
        "under --out.",
    )
    for flag, variable, default, what in (
        ("--clients", "CLIENTS", DEFAULT_CLIENTS, "client hosts"),
        ("--servers", "SERVERS", DEFAULT_SERVERS, "server hosts"),
        ("--workers", "WORKERS", DEFAULT_WORKERS, "worker threads per server"),
        ("--requests", "REQUESTS", DEFAULT_REQUESTS, "requests per client"),
    ):
        add_setting(parser, flag, variable, default, what, type=positive_int)
    add_setting(
        parser, "--out", "OUT", DEFAULT_OUT, "where traces and logs go", metavar="DIR"
    )
    add_setting(
        parser,
        "--timeout",
        "UP_TIMEOUT",
        DEFAULT_TIMEOUT,
        "give up after this long",
        type=float,
        metavar="SECONDS",
    )
    add_port_arguments(parser)
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    plan = Plan(
        clients=args.clients,
        servers=args.servers,
        workers=args.workers,
        requests=args.requests,
        out=Path(args.out),
        ports=ports_from_args(args),
        timeout=args.timeout,
    )
    return Launcher(plan).run()
