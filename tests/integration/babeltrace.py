"""Decode CTF traces with babeltrace2, the reference reader, for tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

_LINE = re.compile(r"^\[(?P<time>[^\]]+)\] \S+ (?P<name>[\w:]+): (?P<rest>.*)$")
_VTID = re.compile(r"\{ vtid = (-?\d+) \}")
_BYTE = re.compile(r"\[\d+\] = (\d+)")


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    vtid: int
    payload: bytes


def require_babeltrace() -> str:
    path = shutil.which("babeltrace2")
    if path is None:
        pytest.skip("babeltrace2 is not installed (Debian package babeltrace2)")
    return path


def decode(trace: Path) -> list[DecodedEvent]:
    """Return every event of the traces under ``trace`` as babeltrace2 sees it.

    Fails the test when babeltrace2 reports any error or warning.
    """
    result = subprocess.run(
        [require_babeltrace(), "--no-delta", str(trace)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    events = []
    for line in result.stdout.splitlines():
        match = _LINE.match(line)
        assert match, f"babeltrace2 printed an unexpected line: {line[:200]}"
        vtid = _VTID.search(match["rest"])
        assert vtid, f"no vtid in {line[:200]}"
        payload = bytes(int(b) for b in _BYTE.findall(match["rest"]))
        events.append(DecodedEvent(match["name"], int(vtid[1]), payload))
    return events
