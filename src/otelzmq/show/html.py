"""A self-contained HTML report: tables, histograms and waterfalls.

The page loads nothing: the style sheet is inline, pictures are inline SVG
drawn here, and there is no script. Every text that comes from a recording
(span names, hosts, status messages, attribute values) goes through
:func:`html.escape`. SVG is written by hand because a few rectangles and
labels do not justify a plotting dependency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

from otelzmq.show.analysis import Latency, Report
from otelzmq.show.model import Trace
from otelzmq.show.text import clock_note, format_ms, format_share

#: Fill colours of the hosts in waterfalls, assigned in host order.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)
ERROR_COLOUR = "#e15759"

#: Bins of a latency histogram.
HISTOGRAM_BINS = 24

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .2em .8em; border-bottom: 1px solid #ddd; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.error td { color: #b00; }
.note { background: #f6f6f6; padding: .5em 1em; border-left: 4px solid #999; }
.bar { display: inline-block; height: .8em; background: #4e79a7; }
svg text { font: 11px system-ui, sans-serif; fill: #222; }
figure { margin: 1em 0; } figcaption { font-weight: bold; }
code { font-size: .95em; }
"""


def _cell(value: object) -> str:
    return escape(str(value))


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Sequence[int] = (),
    error_rows: Sequence[bool] | None = None,
) -> str:
    head = "".join(
        f'<th class="n">{_cell(h)}</th>' if i in numeric else f"<th>{_cell(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="n">{_cell(c)}</td>' if i in numeric else f"<td>{_cell(c)}</td>"
            for i, c in enumerate(row)
        )
        marked = error_rows is not None and error_rows[index]
        body.append(
            f'<tr class="error">{cells}</tr>' if marked else f"<tr>{cells}</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def histogram_svg(durations: Sequence[float], *, width: int = 360) -> str:
    """Draw a latency histogram with logarithmic bins, in milliseconds."""
    height, bottom = 90, 20
    values = [max(d, 1.0) for d in durations]
    if not values:
        return ""
    low, high = math.log10(min(values)), math.log10(max(values))
    span = high - low
    bins = [0] * HISTOGRAM_BINS
    for value in values:
        index = (
            0 if span == 0 else int((math.log10(value) - low) / span * HISTOGRAM_BINS)
        )
        bins[min(index, HISTOGRAM_BINS - 1)] += 1
    tallest = max(bins)
    step = width / HISTOGRAM_BINS
    parts = [
        f'<svg width="{width}" height="{height + bottom}" '
        f'viewBox="0 0 {width} {height + bottom}" role="img">'
    ]
    for index, count in enumerate(bins):
        if not count:
            continue
        bar = count / tallest * (height - 12)
        x = index * step
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bar:.1f}" width="{step - 1:.1f}" '
            f'height="{bar:.1f}" fill="{PALETTE[0]}"><title>{count} spans</title>'
            "</rect>"
        )
    parts.append(
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#888"/>'
    )
    parts.append(f'<text x="0" y="{height + 14}">{format_ms(min(values))} ms</text>')
    parts.append(
        f'<text x="{width}" y="{height + 14}" text-anchor="end">'
        f"{format_ms(max(values))} ms</text>"
    )
    parts.append(f'<text x="0" y="10">{tallest} max per bin</text>')
    parts.append("</svg>")
    return "".join(parts)


def waterfall_svg(trace: Trace, colours: dict[str, str], *, width: int = 900) -> str:
    """Draw one trace as bars on a shared time axis."""
    rows = list(trace.walk())
    if not rows:
        return ""
    label_width, row_height, top = 330, 18, 22
    plot = width - label_width - 10
    start = trace.start_ns
    total = max(trace.end_ns - start, 1)
    height = top + row_height * len(rows) + 6
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img">'
    ]
    for tick in range(5):
        x = label_width + plot * tick / 4
        anchor = "end" if tick == 4 else "start" if tick == 0 else "middle"
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height}" '
            'stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="12" text-anchor="{anchor}">'
            f"{format_ms(total * tick / 4)} ms</text>"
        )
    for index, (depth, span) in enumerate(rows):
        y = top + index * row_height
        x = label_width + (span.start_ns - start) / total * plot
        bar = max(span.duration_ns / total * plot, 1.0)
        fill = ERROR_COLOUR if span.is_error else colours.get(span.host, PALETTE[0])
        label = _fit(f"{span.host}: {span.name}", (label_width - 8) // 6 - depth * 2)
        tip = (
            f"{span.name} on {span.host}: starts at "
            f"{format_ms(span.start_ns - start)} ms, lasts "
            f"{format_ms(span.duration_ns)} ms"
        )
        if span.is_error and span.status_message:
            tip += f" ({span.status_message})"
        parts.append(
            f'<text x="{4 + depth * 12}" y="{y + 12}">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{bar:.1f}" '
            f'height="{row_height - 5}" fill="{fill}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _fit(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters, marking the cut."""
    width = max(width, 8)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _latency_rows(latencies: Sequence[Latency]) -> list[list[object]]:
    return [
        [
            *lat.key,
            lat.count,
            *(format_ms(v) for v in (lat.p50, lat.p95, lat.p99, lat.max)),
        ]
        for lat in latencies
    ]


def _sections(report: Report, traces: Sequence[Trace]) -> list[str]:
    out: list[str] = ["<h2>Summary</h2>"]
    out.append(
        _table(
            ("", "count"),
            [
                ("traces", len(report.traces)),
                ("complete", report.complete_count),
                ("incomplete", len(report.incomplete)),
                ("spans", report.span_count),
                ("error spans", len(report.errors)),
                ("retried requests", len(report.retries)),
            ],
            numeric=(1,),
        )
    )
    out.append("<h2>Spans per service and name</h2>")
    out.append(_table(("service", "name", "spans"), report.span_counts, numeric=(2,)))
    out.append("<h2>Hosts</h2>")
    out.append(
        _table(
            ("host", "service", "spans", "errors", "clock offset ms", "corrected"),
            [
                (
                    h.host,
                    h.service,
                    h.spans,
                    h.errors,
                    format_ms(h.offset_ns),
                    "yes" if h.offset_applied else "no",
                )
                for h in report.hosts
            ],
            numeric=(2, 3, 4),
        )
    )
    out.append(f'<p class="note">{escape(clock_note(report.clock))}</p>')
    if report.errors:
        out.append(f"<h2>Errors ({len(report.errors)})</h2>")
        out.append(
            _table(
                ("trace", "host", "span", "reason"),
                [(s.trace_id, s.host, s.name, s.status_message) for s in report.errors],
            )
        )
    if report.retries:
        out.append(f"<h2>Retried requests ({len(report.retries)})</h2>")
        out.append(
            _table(
                ("trace", "nth", "attempts", "result"),
                [
                    (
                        r.trace_id,
                        r.nth,
                        r.attempts,
                        "answered" if r.succeeded else "gave up",
                    )
                    for r in report.retries
                ],
                numeric=(2,),
            )
        )
    if report.incomplete:
        out.append(f"<h2>Incomplete traces ({len(report.incomplete)})</h2>")
        out.append(
            _table(
                ("trace", "missing from", "missing spans", "orphans", "hosts seen"),
                [
                    (
                        i.trace_id,
                        ", ".join(i.missing_roles) if i.missing else "-",
                        ", ".join(i.missing) or "-",
                        i.orphans,
                        ", ".join(i.hosts),
                    )
                    for i in report.incomplete
                ],
                numeric=(3,),
            )
        )
    out += _latency_sections(report)
    out += _phase_section(report)
    out += _waterfall_sections(report, traces)
    return out


def _latency_sections(report: Report) -> list[str]:
    out = ["<h2>Latency by span name (ms)</h2>"]
    out.append(
        _table(
            ("name", "count", "p50", "p95", "p99", "max"),
            _latency_rows(report.latency_by_name),
            numeric=(1, 2, 3, 4, 5),
        )
    )
    out.append("<h2>Latency by host (ms)</h2>")
    out.append(
        _table(
            ("host", "name", "count", "p50", "p95", "p99", "max"),
            _latency_rows(report.latency_by_host),
            numeric=(2, 3, 4, 5, 6),
        )
    )
    out.append("<h2>Latency histograms</h2>")
    durations: dict[str, list[float]] = {}
    for trace in report.traces.values():
        for span in trace.spans:
            durations.setdefault(span.name, []).append(span.duration_ns)
    for name in sorted(durations):
        out.append(
            f"<figure><figcaption>{escape(name)} ({len(durations[name])} spans, "
            "log scale)</figcaption>"
            f"{histogram_svg(durations[name])}</figure>"
        )
    return out


def _phase_section(report: Report) -> list[str]:
    corrected = ", clock corrected" if report.clock.skew_detected else ""
    out = [
        f"<h2>Where a request's time goes ({report.phase_requests} complete "
        f"requests{corrected})</h2>"
    ]
    if not report.phases:
        return [*out, "<p>No request has all of its spans.</p>"]
    rows = "".join(
        f"<tr><td>{escape(p.label)}</td><td class='n'>{format_ms(p.median)}</td>"
        f"<td class='n'>{format_ms(p.p95)}</td>"
        f"<td class='n'>{format_share(p.share)}</td>"
        f"<td><span class='bar' style='width:{max(p.share, 0) * 300:.0f}px'>"
        "</span></td></tr>"
        for p in report.phases
    )
    out.append(
        "<table><tr><th>phase</th><th class='n'>median ms</th>"
        "<th class='n'>p95 ms</th><th class='n'>share</th><th></th></tr>"
        f"{rows}</table>"
    )
    return out


def _waterfall_sections(report: Report, traces: Sequence[Trace]) -> list[str]:
    if not traces:
        return []
    hosts = sorted({s.host for t in report.traces.values() for s in t.spans})
    colours = {host: PALETTE[i % len(PALETTE)] for i, host in enumerate(hosts)}
    corrected = " (clock corrected)" if report.clock.skew_detected else ""
    out = [f"<h2>Slowest requests{corrected}</h2>"]
    legend = " ".join(
        f'<span style="color:{colours[h]}">&#9632;</span> {escape(h)}' for h in hosts
    )
    out.append(f"<p>{legend}</p>")
    for trace in traces:
        out.append(
            f"<figure><figcaption>trace <code>{escape(trace.trace_id)}</code>, "
            f"{format_ms(trace.duration_ns)} ms, {len(trace.spans)} spans"
            f"</figcaption>{waterfall_svg(trace, colours)}</figure>"
        )
    return out


def render_html(
    report: Report, *, sources: Sequence[str], traces: Sequence[Trace] = ()
) -> str:
    """Return the whole page.

    Args:
        report: The analysed recording.
        sources: The paths read, shown in the title.
        traces: Traces to draw as waterfalls (clock corrected ones).
    """
    title = f"otelzmq show: {', '.join(sources)}"
    body = "\n".join(_sections(report, traces))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n"
        f"<p>{report.span_count} spans in {len(report.traces)} traces.</p>\n"
        f"{body}\n</body></html>\n"
    )
