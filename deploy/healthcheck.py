#!/usr/bin/env python3
"""Container healthchecks for otelzmq hosts: ``otelzmq-healthcheck ROLE``.

``proxy``
    Healthy once all four proxy ports accept TCP connections.
``server``
    Healthy once this container holds established TCP connections to the
    proxy's backend and terminator ports, that is once the server can both
    take requests and hear the proxy's KILL. Clients that wait for this
    cannot finish before a slow-starting server has joined, which would
    leave that server waiting for a KILL that was already sent.

Ports follow the same ``OTELZMQ_*_PORT`` variables as the hosts. The server
check reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` directly: they list the
sockets of the container's own network namespace, and no tool that could
list them (ss, netstat) is in the slim image. Exit status 0 means healthy,
1 unhealthy, 2 a usage error; one line on stdout says why.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable, Sequence

DEFAULT_PORTS = {
    "FRONTEND": 5559,
    "BACKEND": 5560,
    "CONNECTOR": 5561,
    "TERMINATOR": 5562,
}
CONNECT_TIMEOUT_SECONDS = 2.0
TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_ESTABLISHED = "01"
_ANY_ADDRESS = {"", "0.0.0.0", "::", "*"}


def configured_port(name: str) -> int:
    """Return the port ``OTELZMQ_<name>_PORT`` names, or the default."""
    raw = os.environ.get(f"OTELZMQ_{name}_PORT", "").strip()
    try:
        return int(raw) if raw else DEFAULT_PORTS[name]
    except ValueError:
        return DEFAULT_PORTS[name]


def check_proxy() -> tuple[bool, str]:
    """Try a TCP connection to each of the proxy's four ports."""
    address = os.environ.get("OTELZMQ_BIND_ADDRESS", "").strip()
    host = "127.0.0.1" if address in _ANY_ADDRESS else address
    for name in DEFAULT_PORTS:
        port = configured_port(name)
        try:
            with socket.create_connection((host, port), CONNECT_TIMEOUT_SECONDS):
                pass
        except OSError as error:
            return False, f"{name.lower()} port {host}:{port}: {error}"
    return True, f"all four proxy ports accept connections on {host}"


def established_remote_ports(tables: Iterable[str] = TCP_TABLES) -> set[int]:
    """Remote ports of this network namespace's established TCP sockets."""
    ports: set[int] = set()
    for table in tables:
        try:
            with open(table, encoding="ascii") as lines:
                rows = lines.read().splitlines()[1:]
        except OSError:
            continue  # no IPv6 in this namespace, for instance
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == TCP_ESTABLISHED:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def check_server() -> tuple[bool, str]:
    """Look for connections to the proxy's backend and terminator ports."""
    wanted = {name: configured_port(name) for name in ("BACKEND", "TERMINATOR")}
    connected = established_remote_ports()
    missing = [
        f"{name.lower()} ({port})"
        for name, port in wanted.items()
        if port not in connected
    ]
    if missing:
        return False, "not connected to the proxy's " + " and ".join(missing)
    return True, "connected to the proxy's backend and terminator"


CHECKS = {"proxy": check_proxy, "server": check_server}


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: otelzmq-healthcheck {{{'|'.join(CHECKS)}}}")
        return 2
    healthy, reason = CHECKS[argv[0]]()
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
