"""The terminal report: aligned tables, waterfalls with text bars.

Times are printed in milliseconds with three significant digits. Colour is
used only when the output is a terminal and ``NO_COLOR`` is not set. The
tables are formatted here rather than with a library because the project
depends on none that formats text tables.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from otelzmq.show.analysis import Report
from otelzmq.show.clocks import ClockReport
from otelzmq.show.model import ATTEMPT_NAME, Trace

#: Characters of the timeline column in a waterfall.
BAR_WIDTH = 40

#: Rows listed per table of errors, retries or incomplete traces.
MAX_ROWS = 20

#: Hex digits of a trace id shown in tables (``--trace`` takes a prefix).
SHORT_ID = 16


def format_ms(nanoseconds: float) -> str:
    """Format a duration in milliseconds with three significant digits.

    >>> format_ms(1_234_567), format_ms(45_600), format_ms(250_000_000)
    ('1.23', '0.0456', '250')
    """
    value = nanoseconds / 1e6
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude < 0.0001:
        return f"{value:.4f}"
    return f"{value:#.3g}"


def format_share(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none at all when ``enabled`` is false."""

    enabled: bool = False
    unicode: bool = True

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        isatty = getattr(stream, "isatty", lambda: False)()
        colour = bool(isatty) and not os.environ.get("NO_COLOR")
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "█·".encode(encoding)
            wide = True
        except (LookupError, UnicodeEncodeError):
            wide = False
        return cls(enabled=colour, unicode=wide)

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def heading(self, text: str) -> str:
        return self._wrap("1", text)

    def error(self, text: str) -> str:
        return self._wrap("31", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    @property
    def block(self) -> str:
        return "█" if self.unicode else "#"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: Sequence[int] = (),
    indent: str = "  ",
) -> list[str]:
    """Lay out ``rows`` under ``headers`` in aligned columns.

    Args:
        headers: Column titles.
        rows: Cells, turned into text with ``str``.
        right: Indexes of columns aligned to the right (numbers).
        indent: Text put before every line.
    """
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(values: Sequence[str]) -> str:
        parts = []
        for index, value in enumerate(values):
            if index in right:
                parts.append(value.rjust(widths[index]))
            else:
                parts.append(value.ljust(widths[index]))
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(row) for row in cells)]


def _short(trace_id: str) -> str:
    return trace_id[:SHORT_ID]


def _summary_lines(report: Report, style: Style) -> list[str]:
    hosts = sorted(
        {span.host for trace in report.traces.values() for span in trace.spans}
    )
    lines = [style.heading("Summary")]
    rows = [
        ("traces", len(report.traces)),
        ("complete", report.complete_count),
        ("incomplete", len(report.incomplete)),
        ("spans", report.span_count),
        ("hosts", len(hosts)),
        ("error spans", len(report.errors)),
        ("retried requests", len(report.retries)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        lines.append(f"  {label.ljust(width)}  {value:>6}")
    lines.append("")
    lines.append(style.heading("Spans per service and name"))
    lines += table(
        ("SERVICE", "NAME", "SPANS"),
        [(svc or "?", name, count) for svc, name, count in report.span_counts],
        right=(2,),
    )
    lines.append("")
    lines.append(style.heading("Hosts"))
    lines += table(
        ("HOST", "SERVICE", "SPANS", "ERRORS", "CLOCK OFFSET ms"),
        [
            (
                h.host,
                h.service or "?",
                h.spans,
                h.errors,
                _offset_text(report.clock, h.host),
            )
            for h in report.hosts
        ],
        right=(2, 3, 4),
    )
    return lines


def _offset_text(clock: ClockReport, host: str) -> str:
    offset = clock.hosts.get(host)
    if host in clock.reference_hosts:
        return "reference"
    if offset is None:
        return "unknown"
    if not offset.applied:
        return "0"
    return f"{format_ms(offset.estimate_ns)} (corrected)"


def _limited(title: str, count: int, style: Style) -> list[str]:
    """A section heading; says when only the first rows are listed."""
    heading = style.heading(f"{title} ({count})")
    if count > MAX_ROWS:
        heading += style.dim(f"  first {MAX_ROWS} listed; --json lists all")
    return ["", heading]


def _problem_lines(report: Report, style: Style) -> list[str]:
    lines: list[str] = []
    if report.errors:
        lines += _limited("Errors", len(report.errors), style)
        rows = [
            (_short(s.trace_id), s.host, s.name, s.status_message or "(no reason)")
            for s in report.errors[:MAX_ROWS]
        ]
        lines += [
            style.error(line) if index else line
            for index, line in enumerate(
                table(("TRACE", "HOST", "SPAN", "REASON"), rows)
            )
        ]
    if report.retries:
        lines += _limited("Retried requests", len(report.retries), style)
        rows = [
            (
                _short(r.trace_id),
                "?" if r.nth is None else r.nth,
                r.attempts,
                "answered" if r.succeeded else "gave up",
            )
            for r in report.retries[:MAX_ROWS]
        ]
        lines += table(("TRACE", "NTH", "ATTEMPTS", "RESULT"), rows, right=(1, 2))
    if report.incomplete:
        lines += _limited("Incomplete traces", len(report.incomplete), style)
        rows = [
            (
                _short(i.trace_id),
                ", ".join(i.missing_roles) if i.missing else "-",
                ", ".join(i.missing) or "-",
                i.orphans,
                ", ".join(i.hosts),
            )
            for i in report.incomplete[:MAX_ROWS]
        ]
        lines += table(
            ("TRACE", "MISSING FROM", "MISSING SPANS", "ORPHANS", "HOSTS SEEN"),
            rows,
            right=(3,),
        )
    return lines


def _latency_lines(report: Report, style: Style) -> list[str]:
    lines = ["", style.heading("Latency by span name (ms)")]
    lines += table(
        ("NAME", "COUNT", "P50", "P95", "P99", "MAX"),
        [
            (
                lat.key[0],
                lat.count,
                *map(format_ms, (lat.p50, lat.p95, lat.p99, lat.max)),
            )
            for lat in report.latency_by_name
        ],
        right=(1, 2, 3, 4, 5),
    )
    lines += ["", style.heading("Latency by host (ms)")]
    lines += table(
        ("HOST", "NAME", "COUNT", "P50", "P95", "P99", "MAX"),
        [
            (*lat.key, lat.count, *map(format_ms, (lat.p50, lat.p95, lat.p99, lat.max)))
            for lat in report.latency_by_host
        ],
        right=(2, 3, 4, 5, 6),
    )
    return lines


def clock_note(clock: ClockReport) -> str:
    """One sentence on the hosts' clocks, for every view."""
    if clock.skew_detected:
        fixed = [
            f"{h.host} {format_ms(h.estimate_ns)} ms"
            for h in clock.hosts.values()
            if h.applied
        ]
        return (
            f"Clock skew: {clock.violations} spans out of order on the hosts' "
            f"own clocks; offsets estimated from round trips ({', '.join(fixed)}) "
            "and removed: waterfalls and phases are clock corrected."
        )
    if clock.violations:
        return (
            f"Clock note: {clock.violations} spans slightly out of order, within "
            "what the round trips allow; times are not corrected."
        )
    return "Clocks: all cross-host spans in order; no correction needed."


def _phase_lines(report: Report, style: Style) -> list[str]:
    corrected = " (clock corrected)" if report.clock.skew_detected else ""
    lines = [
        "",
        style.heading(
            f"Where a request's time goes: {report.phase_requests} "
            f"complete requests{corrected}"
        ),
    ]
    if not report.phases:
        lines.append("  no request has all of its spans")
        return lines
    rows = []
    for phase in report.phases:
        bar = style.block * round(max(phase.share, 0.0) * 30)
        rows.append(
            (
                phase.label,
                format_ms(phase.median),
                format_ms(phase.p95),
                format_share(phase.share),
                bar,
            )
        )
    lines += table(("PHASE", "MEDIAN ms", "P95 ms", "SHARE", ""), rows, right=(1, 2, 3))
    return lines


def render_report(report: Report, *, sources: Sequence[str], style: Style) -> str:
    """Render the whole summary as text."""
    lines = [
        style.heading("otelzmq show")
        + f": {', '.join(sources)}: {report.span_count} spans in "
        f"{len(report.traces)} traces",
        "",
    ]
    lines += _summary_lines(report, style)
    lines += _problem_lines(report, style)
    lines += _latency_lines(report, style)
    lines += ["", style.heading("Clocks")]
    lines += textwrap.wrap(
        clock_note(report.clock), width=78, initial_indent="  ", subsequent_indent="  "
    )
    lines += _phase_lines(report, style)
    return "\n".join(lines) + "\n"


def _span_label(span_name: str, attempt: object, message: str) -> str:
    label = span_name
    if span_name == ATTEMPT_NAME and attempt is not None:
        label += f" #{attempt}"
    if message:
        label += f" [{message}]"
    return label


def render_waterfall(
    trace: Trace, *, style: Style, corrected: bool = False, width: int = BAR_WIDTH
) -> str:
    """Draw one trace as an indented timeline.

    Args:
        trace: The trace, clock corrected if ``corrected``.
        style: Colour and bar characters.
        corrected: Whether to say the times are clock corrected.
        width: Characters of the timeline bars.
    """
    if not trace.spans:
        return f"Trace {trace.trace_id}: no spans\n"
    start = trace.start_ns
    total = max(trace.end_ns - start, 1)
    root = trace.root
    title = f"Trace {trace.trace_id}"
    if root is not None:
        title += f"  {root.name}"
        nth = root.attributes.get("otelzmq.nth")
        if nth is not None:
            title += f" nth={nth}"
    title += f"  {format_ms(trace.duration_ns)} ms"
    note = "  (clock corrected)" if corrected else ""
    lines = [style.heading(title), f"  hosts: {', '.join(trace.hosts)}{note}"]
    orphan_ids = {span.span_id for span in trace.orphans}
    rows = []
    flags = []
    for depth, span in trace.walk():
        first = math.floor((span.start_ns - start) / total * width)
        last = math.ceil((span.end_ns - start) / total * width)
        first = min(max(first, 0), width - 1)
        last = min(max(last, first + 1), width)
        bar = " " * first + style.block * (last - first) + " " * (width - last)
        label = _span_label(
            span.name,
            span.attributes.get("otelzmq.attempt"),
            span.status_message if span.is_error else "",
        )
        if span.span_id in orphan_ids:
            label += " (parent missing)"
        rows.append(
            (
                format_ms(span.start_ns - start),
                format_ms(span.duration_ns),
                span.host,
                "  " * depth + label,
                f"|{bar}|",
            )
        )
        flags.append(span.is_error)
    body = table(
        ("OFFSET ms", "DURATION ms", "HOST", "SPAN", "TIMELINE"), rows, right=(0, 1)
    )
    lines.append(body[0])
    for line, is_error in zip(body[1:], flags, strict=True):
        lines.append(style.error(line) if is_error else line)
    return "\n".join(lines) + "\n"
