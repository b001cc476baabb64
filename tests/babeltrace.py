"""babeltrace2, the reference CTF reader, as the tests call it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def require_babeltrace() -> str:
    path = shutil.which("babeltrace2")
    if path is None:
        pytest.skip("babeltrace2 is not installed (Debian package babeltrace2)")
    return path


def decode(trace: Path) -> list[DecodedEvent]:
    """Return every event of the traces under ``trace`` as babeltrace2 sees it.

    Fails the test when babeltrace2 fails or prints a line that is not one
    of our events.
    """
    result = subprocess.run(
        [require_babeltrace(), "--clock-seconds", "--no-delta", str(trace)],
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
