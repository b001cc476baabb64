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

#: Sub-commands and their modules, in the order ``--help`` lists them.
_COMMAND_MODULES = {
    "up": "otelzmq.launcher",
    "proxy": "otelzmq.proxy",
    "server": "otelzmq.server",
    "client": "otelzmq.client",
    "replay": "otelzmq.replay",
    "show": "otelzmq.show",
}

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the parser, with every sub-command or only ``command``.

    A host process registers only its own sub-command, so it does not
    import the modules of the others.
    """
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
    names = [command] if command in _COMMAND_MODULES else list(_COMMAND_MODULES)
    for name in names:
        importlib.import_module(_COMMAND_MODULES[name]).register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    """Send operator logs to stderr; warnings only unless asked for more.

    The root logger itself passes INFO and up in any case, so that the
    OpenTelemetry log handler a host adds records its story lines even when
    stderr shows only warnings.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
