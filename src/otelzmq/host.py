"""What every host process shares: its console story, signals and telemetry.

A host tells the story of its exchanges on standard output, one line each,
in the style of the original system (``[client] Requesting nth=1001``).
The same lines go to the ``otelzmq.<role>`` logger at INFO, so the
OpenTelemetry logs SDK records them with the active trace and span ids.
Operator diagnostics go to standard error through :mod:`logging` as usual.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from otelzmq.exceptions import OtelZmqError
from otelzmq.telemetry import setup_telemetry

logger = logging.getLogger(__name__)


class HostConsole:
    """Prints a host's story lines and records them as log records.

    Args:
        role: ``client``, ``proxy`` or ``server``; sets the line prefix.
    """

    def __init__(self, role: str) -> None:
        self._prefix = f"[{role:<6}] "
        self._logger = logging.getLogger(f"otelzmq.{role}")
        self._lock = threading.Lock()

    def say(self, message: str, *args: Any, level: int = logging.INFO) -> None:
        """Print one story line and log it at ``level``."""
        text = message % args if args else message
        with self._lock:
            try:
                sys.stdout.write(self._prefix + text + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                pass  # nobody reads stdout any more; the log record remains
        self._logger.log(level, message, *args)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_host(
    role: str,
    args: argparse.Namespace,
    body: Callable[[HostConsole], int],
) -> int:
    """Run one host with telemetry installed, and shut it down cleanly.

    SIGTERM is turned into KeyboardInterrupt, like SIGINT, so that both end
    in the same orderly stop. Telemetry is flushed whatever happens.

    Args:
        role: ``client``, ``proxy`` or ``server``.
        args: Parsed arguments with the telemetry flags.
        body: The host's main loop; returns the exit status.

    Returns:
        The exit status: ``body``'s, 2 for a configuration error such as a
        port already in use, 130 when interrupted outside ``body``'s own
        handling.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    console = HostConsole(role)
    try:
        telemetry = setup_telemetry(
            role,
            args.name,
            args.out,
            prometheus_port=args.prometheus_port,
            prometheus_host=args.prometheus_host,
        )
    except OSError as error:
        logger.error("%s %s could not start its telemetry: %s", role, args.name, error)
        return 2
    try:
        return body(console)
    except OtelZmqError as error:
        logger.error("%s", error)
        return 2
    except KeyboardInterrupt:
        logger.info("%s %s interrupted", role, args.name)
        return 130
    finally:
        telemetry.shutdown()
