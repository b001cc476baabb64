"""``otelzmq show`` on CTF recordings: output, options and exit codes."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from otelzmq.cli import main
from tests.show.showkit import MS, T0, Recorder, standard_run, write_recording


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A run of 30 requests plus one retried and one cut-short request."""
    pytest.importorskip("otelzmq.ctf.writer", reason="no CTF writer to record with")
    recorder = Recorder(offsets={"proxy": 15 * MS})
    standard_run(recorder)
    recorder.request(T0 + 900 * MS, failed_attempts=1, nth=7)
    recorder.request(T0 + 950 * MS, drop=("server",))
    out = tmp_path / "out"
    write_recording(recorder, str(out))
    return out


def test_text_report_of_a_recording(recording: Path, capsys) -> None:
    assert main(["show", str(recording)]) == 0
    out = capsys.readouterr().out

    assert "190 spans in 32 traces" in out
    assert "Retried requests (1)" in out
    assert "Incomplete traces (1)" in out
    assert "clock corrected" in out
    assert "\x1b[" not in out


def test_json_summary_has_the_documented_keys(recording: Path, capsys) -> None:
    assert main(["show", "--json", "--slowest", "2", str(recording)]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert summary["schema"] == "otelzmq.show/1"
    assert summary["traces"] == {"total": 32, "complete": 31, "incomplete": 1}
    assert summary["spans"]["total"] == 190
    assert [h["host"] for h in summary["hosts"]] == [
        "client-1",
        "client-2",
        "client-3",
        "proxy",
        "server-1",
        "server-2",
    ]
    (retry,) = summary["retries"]
    assert (retry["nth"], retry["attempts"], retry["succeeded"]) == (7, 2, True)
    assert summary["errors"][0]["reason"] == "no reply within 5 s"
    assert summary["incomplete"][0]["missing_roles"] == ["proxy", "server"]
    clock = {h["host"]: h for h in summary["clock"]["hosts"]}
    assert summary["clock"]["skew_detected"] is True
    assert clock["proxy"]["offset_ms"] == pytest.approx(15.0, abs=0.03)
    assert summary["phases"]["requests"] == 31
    assert [p["phase"] for p in summary["phases"]["phases"]] == [
        "client_to_proxy",
        "proxy_forward",
        "queue",
        "worker",
        "compute",
        "return",
    ]
    names = {row["name"] for row in summary["latency"]["by_name"]}
    assert "compute-nth-prime" in names
    assert set(summary["latency"]["by_name"][0]) == {
        "name",
        "count",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
    }
    assert len(summary["slowest"]) == 2
    assert len(summary["waterfalls"]) == 2
    assert summary["waterfalls"][0]["spans"][0]["offset_ms"] == 0


def test_trace_waterfall_by_prefix(recording: Path, capsys) -> None:
    assert main(["show", "--json", str(recording)]) == 0
    slowest = json.loads(capsys.readouterr().out)["slowest"][0]["trace_id"]

    assert main(["show", "--trace", slowest[:10], str(recording)]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith(f"Trace {slowest}")
    assert "get-nth-prime-attempt #2" in out
    assert "Summary" not in out


def test_html_file_is_written(recording: Path, tmp_path: Path, capsys) -> None:
    page_path = tmp_path / "report.html"
    assert main(["show", "--html", str(page_path), str(recording)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.err

    page = page_path.read_text(encoding="utf-8")
    HTMLParser().feed(page)
    assert "https://" not in page and "http://" not in page
    assert page.count("<svg") == 6 + 5  # histograms, default five waterfalls


def test_host_filter(recording: Path, capsys) -> None:
    assert main(["show", "--json", "--host", "server-2", str(recording)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [h["host"] for h in summary["hosts"]] == ["server-2"]
    assert summary["spans"]["total"] == 30


def test_missing_path_fails_cleanly(tmp_path: Path, capsys) -> None:
    assert main(["show", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err
    assert "Traceback" not in err


def test_empty_folder_fails_cleanly(tmp_path: Path, capsys) -> None:
    assert main(["show", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("otelzmq show: ")
    assert "Traceback" not in err


def test_unknown_host_and_trace_fail_cleanly(recording: Path, capsys) -> None:
    assert main(["show", "--host", "nobody", str(recording)]) == 1
    assert "no spans found" in capsys.readouterr().err
    assert main(["show", "--trace", "ffffffffff", str(recording)]) == 1
    assert "no trace with id" in capsys.readouterr().err


def test_default_path_is_out(recording: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(recording.parent)
    assert main(["show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"] == ["out"]
    elsewhere = recording.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["show"]) == 2
    assert "out: no such file or directory" in capsys.readouterr().err
