"""``otelzmq show``: what happened in a run, read straight from the recording.

No backend is needed: the command reads the CTF traces of every host, groups
the spans into requests, and prints a summary (traces, errors, retries,
incomplete requests), latency percentiles per span name and host, where a
request's time goes, and waterfalls of single requests. Host clocks that
disagree are detected and corrected (:mod:`otelzmq.show.clocks`). ``--json``
prints the summary for scripts and ``--html`` writes a self-contained page.

Exit status: 0 on success, 1 when the recording holds no spans or the trace
asked for is not there, 2 when an input path does not exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from otelzmq.show.analysis import Report, analyze
from otelzmq.show.model import SpanRecord, Trace, load_spans

logger = logging.getLogger(__name__)

#: Where ``otelzmq up`` writes its recording.
DEFAULT_PATH = "out"

#: Slow traces drawn in the HTML page and listed in JSON when ``--slowest``
#: is not given.
DEFAULT_SLOWEST = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``show`` sub-command."""
    parser = subparsers.add_parser(
        "show",
        help="summarise a recording: traces, errors, latencies, waterfalls",
        description="Read the CTF traces of a run and report what happened, "
        "without any backend.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"recording folders or host trace folders (default {DEFAULT_PATH})",
    )
    parser.add_argument(
        "--trace",
        metavar="ID",
        help="draw the waterfall of one trace (hex id or a unique prefix)",
    )
    parser.add_argument(
        "--slowest",
        type=_count,
        metavar="N",
        help="draw the waterfalls of the N slowest requests",
    )
    parser.add_argument(
        "--html", metavar="FILE", help="also write a self-contained HTML report"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="keep only spans of this host (repeat for several)",
    )
    parser.set_defaults(run=run)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _fail(message: str, status: int) -> int:
    print(f"otelzmq show: {message}", file=sys.stderr)
    return status


def read_spans(
    paths: Sequence[str], hosts: Sequence[str] | None
) -> tuple[list[SpanRecord], int]:
    """Load the spans of ``paths``; return them and how many parts were bad."""
    damaged: list[Exception] = []

    def note(error: Exception) -> None:
        damaged.append(error)
        logger.warning("Skipping part of the recording: %s", error)

    spans = load_spans(paths, hosts=hosts, on_error=note)
    return spans, len(damaged)


def _pick_traces(report: Report, args: argparse.Namespace) -> list[Trace] | str:
    """The traces to draw, or an error message."""
    if args.trace:
        found = report.find_trace(args.trace)
        if not found:
            return f"no trace with id {args.trace!r} in the recording"
        if len(found) > 1:
            ids = ", ".join(trace.trace_id for trace in found[:5])
            return f"trace id {args.trace!r} is ambiguous: {ids}"
        return found
    if args.slowest:
        return report.slowest(args.slowest)
    return []


def _waterfall_json(trace: Trace) -> dict[str, Any]:
    from otelzmq.show.jsonview import to_ms

    start = trace.start_ns
    return {
        "trace_id": trace.trace_id,
        "duration_ms": to_ms(trace.duration_ns),
        "spans": [
            {
                "depth": depth,
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "host": span.host,
                "offset_ms": to_ms(span.start_ns - start),
                "duration_ms": to_ms(span.duration_ns),
                "status": span.status,
            }
            for depth, span in trace.walk()
        ],
    }


def run(args: argparse.Namespace) -> int:
    """Run ``otelzmq show``; return the exit status."""
    from otelzmq.show import html, jsonview, text

    paths = list(args.paths or [DEFAULT_PATH])
    for path in paths:
        if not os.path.exists(path):
            return _fail(f"{path}: no such file or directory", 2)
    try:
        from otelzmq.ctf.tsdl import CtfError
    except ImportError as error:  # pragma: no cover - partial installation
        return _fail(f"cannot read recordings here: {error}", 1)
    try:
        spans, damaged = read_spans(paths, args.host)
    except (CtfError, OSError, ValueError) as error:
        message = str(error)
        if not any(path in message for path in paths):
            message = f"cannot read {', '.join(paths)}: {message}"
        return _fail(message, 1)
    if damaged:
        print(
            f"otelzmq show: skipped {damaged} damaged parts of the recording",
            file=sys.stderr,
        )
    if not spans:
        where = ", ".join(paths)
        hosts = f" for host {', '.join(args.host)}" if args.host else ""
        return _fail(f"no spans found in {where}{hosts}", 1)

    report = analyze(spans)
    chosen = _pick_traces(report, args)
    if isinstance(chosen, str):
        return _fail(chosen, 1)

    if args.html:
        slow = report.slowest(
            args.slowest if args.slowest is not None else DEFAULT_SLOWEST
        )
        extra = [t for t in chosen if t not in slow]
        page = html.render_html(report, sources=paths, traces=slow + extra)
        try:
            with open(args.html, "w", encoding="utf-8") as handle:
                handle.write(page)
        except OSError as error:
            return _fail(f"cannot write {args.html}: {error}", 1)
        print(f"otelzmq show: wrote {args.html}", file=sys.stderr)

    if args.json:
        summary = jsonview.report_to_dict(
            report,
            sources=paths,
            slowest=args.slowest if args.slowest is not None else DEFAULT_SLOWEST,
        )
        if chosen:
            summary["waterfalls"] = [_waterfall_json(trace) for trace in chosen]
        return _emit(json.dumps(summary, indent=2, default=str) + "\n")

    style = text.Style.for_stream(sys.stdout)
    parts = []
    if not args.trace:
        parts.append(text.render_report(report, sources=paths, style=style))
    corrected = report.clock.skew_detected
    for trace in chosen:
        parts.append(
            "\n" + text.render_waterfall(trace, style=style, corrected=corrected)
        )
    if args.trace and report.clock.skew_detected:
        parts.append("\n" + text.clock_note(report.clock) + "\n")
    return _emit("".join(parts))


def _emit(output: str) -> int:
    """Write ``output`` to stdout; a reader that went away is not an error."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    output = output.encode(encoding, "replace").decode(encoding)
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:
        # ``otelzmq show | head``: silence the flush at exit as well.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0
