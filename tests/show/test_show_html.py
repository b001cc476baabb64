"""The HTML page is well formed, self-contained and escapes trace text."""

from __future__ import annotations

from html.parser import HTMLParser

from otelzmq.show.analysis import analyze
from otelzmq.show.html import histogram_svg, render_html
from tests.show.showkit import MS, T0, Recorder, standard_run

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "wbr"}


class _Checker(HTMLParser):
    """Records every tag and checks that they nest properly."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data) -> None:
        self.text.append(data)


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def test_page_is_well_formed_and_loads_nothing(recorder: Recorder) -> None:
    recorder.offsets["server-1"] = 4 * MS
    standard_run(recorder)
    recorder.request(T0 + 900 * MS, failed_attempts=1)
    recorder.request(T0 + 950 * MS, drop=("server",))
    report = analyze(recorder.spans())

    page = render_html(report, sources=["out"], traces=report.slowest(3))
    checker = _check(page)

    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "script" not in checker.tags
    assert not any(name in ("src", "href") for name, _ in checker.attributes)
    assert checker.tags.count("svg") == 6 + 3  # six histograms, three waterfalls
    text = " ".join(checker.text)
    assert "Errors (1)" in text and "Incomplete traces (1)" in text
    assert "clock corrected" in text
    assert "no reply within 5 s" in text


def test_trace_text_is_escaped() -> None:
    recorder = Recorder()
    hostile = '<script>alert("x")</script>'
    recorder.span("client-<b>", hostile, T0, T0 + MS, error='"><img src=x>')
    report = analyze(recorder.spans())

    page = render_html(report, sources=["<dir>"], traces=report.slowest(1))
    checker = _check(page)

    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "script" not in checker.tags and "img" not in checker.tags
    assert hostile in "".join(checker.text)


def test_histogram_of_equal_values_has_one_bar() -> None:
    svg = histogram_svg([5.0, 5.0, 5.0])
    assert svg.count("<rect") == 1
    assert histogram_svg([]) == ""
