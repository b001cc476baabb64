"""The ``otelzmq`` command: one sub-command per role or tool.

Each sub-command lives in its own module, which provides
``register(subparsers)``; that function adds the sub-command's parser and
sets ``run`` to a callable taking the parsed arguments and returning the exit
status. This module only dispatches and sets up logging.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from otelzmq import __version__

#: Sub-command modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "otelzmq.launcher",
    "otelzmq.proxy",
    "otelzmq.server",
    "otelzmq.client",
    "otelzmq.replay",
    "otelzmq.show",
)

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelzmq",
        description="A traced ZeroMQ nth-prime system that records CTF traces.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more on stderr (-v for info, -vv for debug)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    """Send operator logs to stderr; warnings only unless asked for more."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format=_LOG_FORMAT, stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
