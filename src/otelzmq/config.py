"""Addresses, ports and limits shared by every host, with their defaults.

Each setting has a command-line flag and an environment variable; the flag
wins, then the variable, then the default. The defaults reproduce the
original system: one proxy on localhost with ports 5559 to 5562. A variable
that does not parse is reported with a warning and the default is kept, so a
typo in a deployment file never stops a host.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

DEFAULT_PROXY_HOST = "127.0.0.1"
DEFAULT_BIND_ADDRESS = "127.0.0.1"
DEFAULT_FRONTEND_PORT = 5559
DEFAULT_BACKEND_PORT = 5560
DEFAULT_CONNECTOR_PORT = 5561
DEFAULT_TERMINATOR_PORT = 5562

#: Largest n a server accepts. p(10,000,000) = 179,424,673 takes about a
#: second and 90 MB to sieve; larger values would let one request stall a
#: worker for longer than a client waits for its reply.
DEFAULT_MAX_NTH = 10_000_000

#: Largest ZeroMQ message a host accepts (``ZMQ_MAXMSGSIZE``). A peer that
#: sends more is disconnected by libzmq before the message reaches us.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

ENV_PREFIX = "OTELZMQ_"

_Number = TypeVar("_Number", int, float)


def env_str(name: str, default: str) -> str:
    """Return ``OTELZMQ_<name>`` from the environment, or ``default``."""
    value = os.environ.get(ENV_PREFIX + name, "").strip()
    return value or default


def env_int(
    name: str, default: int, *, minimum: int = 0, prefix: str = ENV_PREFIX
) -> int:
    """Return ``OTELZMQ_<name>`` as an integer, or ``default``.

    A value that is not an integer, or is below ``minimum``, is logged as a
    warning and replaced by the default. ``prefix=""`` reads variables of
    other namespaces, such as the SDK's ``OTEL_*``.
    """
    return _env_number(prefix + name, default, minimum, int, "an integer")


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Return ``OTELZMQ_<name>`` as a float, or ``default`` (see env_int)."""
    return _env_number(ENV_PREFIX + name, default, minimum, float, "a number")


def _env_number(
    variable: str,
    default: _Number,
    minimum: _Number,
    parse: Callable[[str], _Number],
    kind: str,
) -> _Number:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not value >= minimum:
        logger.warning(
            "Ignoring %s=%r: expected %s >= %s; using %s",
            variable,
            raw,
            kind,
            minimum,
            default,
        )
        return default
    return value


def port(text: str) -> int:
    """Parse a TCP port for argparse, with a readable error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1-65535")
    return value


def positive_int(text: str) -> int:
    """Parse an integer >= 1 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_setting(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    variable: str,
    default: str | int | float | None,
    help: str,
    *,
    type: Callable[[str], Any] = str,
    metavar: str | None = None,
) -> None:
    """Add a flag whose default comes from ``OTELZMQ_<variable>``.

    The help text gains the variable's name and the built-in default, so
    every setting documents itself the same way in ``--help``.

    Args:
        parser: The parser or argument group to add the flag to.
        flag: The flag, such as ``--workers``.
        variable: The variable's name without the ``OTELZMQ_`` prefix.
        default: The built-in default; None for "not set".
        help: What the setting does, in a few words.
        type: The argparse converter; it also picks how the variable is read.
        metavar: The flag's value name in ``--help``.
    """
    if isinstance(default, float):
        shown = f", default {default:g}"
    else:
        shown = "" if default is None else f", default {default}"
    parser.add_argument(
        flag,
        type=type,
        default=_environment_default(variable, default, type),
        metavar=metavar,
        help=f"{help} (env {ENV_PREFIX}{variable}{shown})",
    )


def _environment_default(
    variable: str, default: str | int | float | None, kind: Callable[[str], Any]
) -> Any:
    """Read a setting's variable the way its flag's type reads the flag."""
    if kind is str:
        return (
            env_str(variable, default)
            if default is not None
            else (os.environ.get(ENV_PREFIX + variable, "").strip() or None)
        )
    if kind is float:
        return env_float(variable, float(default or 0))
    minimum = 1 if kind in (positive_int, port) else 0
    return env_int(variable, int(default or 0), minimum=minimum) or default


@dataclass(frozen=True)
class ProxyPorts:
    """The four ports the proxy binds."""

    frontend: int = DEFAULT_FRONTEND_PORT
    backend: int = DEFAULT_BACKEND_PORT
    connector: int = DEFAULT_CONNECTOR_PORT
    terminator: int = DEFAULT_TERMINATOR_PORT

    def as_dict(self) -> dict[str, int]:
        return {
            "frontend": self.frontend,
            "backend": self.backend,
            "connector": self.connector,
            "terminator": self.terminator,
        }


@dataclass(frozen=True)
class ProxyAddress:
    """Where clients and servers find the proxy."""

    host: str = DEFAULT_PROXY_HOST
    ports: ProxyPorts = ProxyPorts()

    def endpoint(self, name: str) -> str:
        """Return the ``tcp://`` endpoint of one of the proxy's sockets."""
        return tcp_endpoint(self.host, getattr(self.ports, name))


def tcp_endpoint(host: str, port_number: int) -> str:
    """Format a TCP endpoint, bracketing IPv6 literals."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port_number}"


def add_port_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the four proxy port flags, defaulting to the environment."""
    group = parser.add_argument_group("proxy ports")
    for name, default in ProxyPorts().as_dict().items():
        add_setting(
            group,
            f"--{name}-port",
            f"{name.upper()}_PORT",
            default,
            f"the proxy's {name} port",
            type=port,
            metavar="PORT",
        )


def ports_from_args(args: argparse.Namespace) -> ProxyPorts:
    return ProxyPorts(
        frontend=args.frontend_port,
        backend=args.backend_port,
        connector=args.connector_port,
        terminator=args.terminator_port,
    )


def add_proxy_host_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--proxy-host`` (env ``OTELZMQ_PROXY_HOST``)."""
    add_setting(
        parser,
        "--proxy-host",
        "PROXY_HOST",
        DEFAULT_PROXY_HOST,
        "host name or address of the proxy",
        metavar="HOST",
    )


def proxy_address_from_args(args: argparse.Namespace) -> ProxyAddress:
    return ProxyAddress(host=args.proxy_host, ports=ports_from_args(args))
