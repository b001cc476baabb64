"""The terminal report and waterfalls."""

from __future__ import annotations

import io
import re

from otelzmq.show.analysis import analyze
from otelzmq.show.text import Style, format_ms, render_report, render_waterfall, table
from tests.show.showkit import MS, T0, Recorder, standard_run

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_milliseconds_have_three_significant_digits() -> None:
    assert format_ms(1_234_567) == "1.23"
    assert format_ms(12_345_678) == "12.3"
    assert format_ms(123_456_789) == "123"
    assert format_ms(45_600) == "0.0456"
    assert format_ms(500_000) == "0.500"
    assert format_ms(0) == "0"
    assert format_ms(-7_000_000) == "-7.00"
    assert format_ms(2_345_678_901) == "2346"


def test_table_aligns_columns() -> None:
    lines = table(("NAME", "N"), [("a", 1), ("longer", 100)], right=(1,))
    assert lines == ["  NAME      N", "  a         1", "  longer  100"]


def test_colour_only_on_a_terminal(monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not Style.for_stream(io.StringIO()).enabled
    assert Style.for_stream(_Terminal()).enabled
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.for_stream(_Terminal()).enabled


def test_report_lists_counts_and_phases(recorder: Recorder) -> None:
    recorder.offsets["proxy"] = 20 * MS
    spans = standard_run(recorder)
    recorder.request(T0 + 900 * MS, failed_attempts=1, nth=99)
    report = analyze(recorder.spans())
    assert len(spans) == 180

    text = render_report(report, sources=["out"], style=Style(unicode=False))

    assert not ANSI.search(text)
    assert "31 traces" in text
    assert re.search(r"^  traces\s+31$", text, re.M)
    assert re.search(r"^  retried requests\s+1$", text, re.M)
    assert "no reply within 5 s" in text
    assert re.search(
        r"^  proxy\s+otelzmq-proxy\s+62\s+0\s+20.0 \(corrected\)$", text, re.M
    )
    assert "clock corrected" in text
    assert re.search(r"^  client -> proxy\s+0.2\d\d\s+0.2\d\d\s+\d+\.\d%", text, re.M)
    header = next(line for line in text.splitlines() if "P50" in line)
    row = next(line for line in text.splitlines() if line.startswith("  compute-nth"))
    # Numbers are right-aligned under their headers.
    assert header.index("MAX") + 3 == len(row)


def test_waterfall_follows_the_tree(recorder: Recorder) -> None:
    recorder.request(T0, failed_attempts=1)
    (trace,) = analyze(recorder.spans()).corrected.values()

    text = render_waterfall(trace, style=Style(unicode=False), width=20)
    lines = text.splitlines()
    rows = [line for line in lines[3:]]
    names = [re.split(r"\s{2,}", line.strip())[3] for line in rows]

    assert names == [
        "get-nth-prime",
        "get-nth-prime-attempt #1 [no reply within 5 s]",
        "get-nth-prime-attempt #2",
        "proxy-frontend-to-backend",
        "get-nth-prime-response",
        "compute-nth-prime",
        "proxy-backend-to-frontend",
    ]
    assert "  client-1  get-nth-prime " in rows[0]
    assert "    compute-nth-prime" in rows[5]
    bars = [line[line.index("|") : line.rindex("|") + 1] for line in rows]
    assert bars[0] == "|" + "#" * 20 + "|"
    assert all(len(bar) == 22 for bar in bars)
    # Offsets grow down the page in this request.
    offsets = [float(line.split()[0]) for line in rows]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0


def test_waterfall_marks_missing_parents() -> None:
    recorder = Recorder()
    recorder.request(T0, drop=("proxy-frontend-to-backend",))
    spans = [s for s in recorder.spans() if s.name != "get-nth-prime-attempt"]
    (trace,) = analyze(spans).traces.values()
    text = render_waterfall(trace, style=Style())
    assert "get-nth-prime-response (parent missing)" in text


def test_long_problem_lists_are_cut(recorder: Recorder) -> None:
    start = T0
    for _ in range(25):
        start = recorder.request(start, failed_attempts=1) + MS
    report = analyze(recorder.spans())

    text = render_report(report, sources=["out"], style=Style())

    assert "Retried requests (25)  first 20 listed; --json lists all" in text
    section = text.split("Retried requests (25)")[1].split("\n\n")[0]
    assert len(section.splitlines()) == 1 + 1 + 20  # heading, titles, rows
