"""Our traces and LTTng-UST's look the same to babeltrace2.

A tiny C program with an ``opentelemetry`` tracepoint provider (the three
events, each one ``ctf_sequence`` of bytes) is compiled and traced by a
private LTTng session daemon; babeltrace2 then describes the classes of
that trace and of ours, which must be identical but for the clock's UUID
and offset. Run as root, the daemon is the machine-wide one
(``/var/run/lttng``); when one is already running the test uses it with a
session of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otelzmq.ctf.metadata import EVENT_IDS
from otelzmq.ctf.writer import open_trace

pytestmark = pytest.mark.slow

PROVIDER_HEADER = """\
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER opentelemetry

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./otel_tp.h"

#if !defined(OTEL_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define OTEL_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

TRACEPOINT_EVENT(opentelemetry, resource_spans,
    TP_ARGS(const uint8_t *, data, uint32_t, len),
    TP_FIELDS(ctf_sequence(uint8_t, resource_spans, data, uint32_t, len)))

TRACEPOINT_EVENT(opentelemetry, resource_metrics,
    TP_ARGS(const uint8_t *, data, uint32_t, len),
    TP_FIELDS(ctf_sequence(uint8_t, resource_metrics, data, uint32_t, len)))

TRACEPOINT_EVENT(opentelemetry, resource_logs,
    TP_ARGS(const uint8_t *, data, uint32_t, len),
    TP_FIELDS(ctf_sequence(uint8_t, resource_logs, data, uint32_t, len)))

#endif

#include <lttng/tracepoint-event.h>
"""

PROGRAM = """\
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "otel_tp.h"

int main(void)
{
    static const uint8_t payload[] = {10, 3, 1, 2, 3};

    tracepoint(opentelemetry, resource_spans, payload, sizeof payload);
    tracepoint(opentelemetry, resource_metrics, payload, 2);
    tracepoint(opentelemetry, resource_logs, payload, 0);
    return 0;
}
"""

# what the program records, in order: (event field, payload)
RECORDED = [
    ("resource_spans", bytes([10, 3, 1, 2, 3])),
    ("resource_metrics", bytes([10, 3])),
    ("resource_logs", b""),
]

# clock values that differ between any two traces
_CLOCK_VALUES = re.compile(r"^\s+(Offset \(s\)|Offset \(cycles\)|UUID): .*\n", re.M)


def _run(command: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"


def _build_program(work: Path) -> Path:
    (work / "otel_tp.h").write_text(PROVIDER_HEADER)
    (work / "app.c").write_text(PROGRAM)
    result = subprocess.run(
        ["gcc", "-I.", "-o", "app", "app.c", "-llttng-ust", "-ldl"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.skip(
            f"cannot build an LTTng-UST program (liblttng-ust-dev?): "
            f"{result.stderr[-300:]}"
        )
    return work / "app"


def _start_sessiond(env: dict[str, str], work: Path) -> subprocess.Popen[bytes]:
    daemon = subprocess.Popen(
        ["lttng-sessiond", "--no-kernel"],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            error = daemon.stderr.read().decode(errors="replace")[-300:]
            pytest.skip(f"lttng-sessiond did not start (one already running?): {error}")
        probe = subprocess.run(["lttng", "list"], env=env, capture_output=True)
        if probe.returncode == 0:
            return daemon
        time.sleep(0.2)
    daemon.kill()
    daemon.wait()
    pytest.fail("lttng-sessiond did not answer within 30 s")


@pytest.fixture(scope="module")
def lttng_trace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Record the three events with LTTng-UST; yield the trace folder."""
    for tool in ("lttng", "lttng-sessiond", "gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (lttng-tools, gcc)")

    work = tmp_path_factory.mktemp("lttng")
    program = _build_program(work)
    (work / "home").mkdir()
    env = {
        **os.environ,
        "LTTNG_HOME": str(work / "home"),
        "LTTNG_UST_REGISTER_TIMEOUT": "10000",
    }
    session = f"otelzmq-compat-{os.getpid()}"
    output = work / "trace"

    # A root daemon already running serves our uniquely named session;
    # otherwise the test starts its own and stops it afterwards.
    shared_daemon = os.geteuid() == 0 and _root_sessiond_running()
    daemon = None if shared_daemon else _start_sessiond(env, work)
    try:
        _run(["lttng", "create", session, f"--output={output}"], env, work)
        try:
            _run(["lttng", "enable-event", "-u", "opentelemetry:*"], env, work)
            _run(["lttng", "add-context", "-u", "-t", "vtid"], env, work)
            _run(["lttng", "start"], env, work)
            _run([str(program)], env, work)
            _run(["lttng", "stop"], env, work)
        finally:
            subprocess.run(
                ["lttng", "destroy", session], env=env, capture_output=True, timeout=60
            )
    finally:
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    yield output


def _root_sessiond_running() -> bool:
    try:
        pid = int(Path("/var/run/lttng/lttng-sessiond.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture
def our_trace(tmp_path: Path) -> Path:
    """Write the events the C program records, with our writer."""
    stream = open_trace(tmp_path, hostname="h", trace_name="t").open_stream()
    for field, payload in RECORDED:
        stream.write(EVENT_IDS[field], [payload], os.getpid())
    stream.close()
    return tmp_path


def _classes(bt_details: Callable[..., str], trace: Path) -> str:
    text = bt_details(trace, "with-data=false")
    assert text.count("Event class `opentelemetry:") == 3
    return _CLOCK_VALUES.sub("", text)


def test_event_classes_match_lttng(
    lttng_trace: Path, our_trace: Path, bt_details
) -> None:
    assert _classes(bt_details, our_trace) == _classes(bt_details, lttng_trace)


def test_event_classes_match_the_fixture(
    lttng_fixture: Path, our_trace: Path, bt_details
) -> None:
    assert _classes(bt_details, our_trace) == _classes(bt_details, lttng_fixture)


def test_events_decode_alike(lttng_trace: Path, our_trace: Path, bt_decode) -> None:
    theirs, ours = bt_decode(lttng_trace), bt_decode(our_trace)

    assert [(e.name, e.payload) for e in theirs] == RECORDED
    assert [(e.name, e.payload) for e in ours] == RECORDED
