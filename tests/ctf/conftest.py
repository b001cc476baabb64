"""Fixtures for the CTF tests: babeltrace2 as the reference decoder."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

LTTNG_FIXTURE = Path(__file__).resolve().parents[3] / "shared/fixtures/lttng-otel"

_EVENT_LINE = re.compile(
    r"^\[(\d+)\.(\d{9})\] \S+ opentelemetry:(\w+): \{ cpu_id = \d+ \}, "
    r"\{ vtid = (-?\d+) \}, \{ _(\w+)_length = (\d+), (\w+) = \[ (.*)\] \}$"
)
_ELEMENT = re.compile(r"\[\d+\] = (\d+)")


@dataclass(frozen=True)
class DecodedEvent:
    """One event as babeltrace2 printed it."""

    name: str
    timestamp_ns: int
    vtid: int
    payload: bytes


def _babeltrace2() -> str:
    path = shutil.which("babeltrace2")
    if path is None:
        pytest.skip("babeltrace2 is not installed (Debian package babeltrace2)")
    return path


def _decode(trace: Path) -> list[DecodedEvent]:
    result = subprocess.run(
        [_babeltrace2(), "--clock-seconds", "--no-delta", str(trace)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    events = []
    for line in result.stdout.splitlines():
        match = _EVENT_LINE.match(line)
        assert match, f"babeltrace2 printed an unexpected line: {line[:200]}"
        seconds, nanos, name, vtid, field, length, field2, body = match.groups()
        payload = bytes(int(value) for value in _ELEMENT.findall(body))
        assert field == field2 == name and len(payload) == int(length)
        events.append(
            DecodedEvent(name, int(seconds) * 10**9 + int(nanos), int(vtid), payload)
        )
    return events


@pytest.fixture
def lttng_fixture() -> Path:
    """The LTTng-UST recording of our three events (skips if absent)."""
    if not (LTTNG_FIXTURE / "ust").is_dir():
        pytest.skip(f"LTTng fixture not found at {LTTNG_FIXTURE}")
    return LTTNG_FIXTURE


@pytest.fixture
def bt_decode() -> Callable[[Path], list[DecodedEvent]]:
    """Decode a trace folder with babeltrace2 (skips if it is missing).

    Returns a function mapping a folder to its events in time order; it
    fails the test if babeltrace2 reports an error or prints a line that is
    not one of our events.
    """
    _babeltrace2()
    return _decode


@pytest.fixture
def bt_details() -> Callable[..., str]:
    """Run babeltrace2's ``sink.text.details`` on a folder; return stdout."""
    babeltrace2 = _babeltrace2()

    def details(trace: Path, *params: str) -> str:
        command = [babeltrace2, str(trace), "-c", "sink.text.details"]
        if params:
            command.append("--params=" + ",".join(params))
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return details
