"""Fixtures for the CTF tests: babeltrace2 as the reference decoder."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.babeltrace import DecodedEvent, decode, require_babeltrace
from tests.conftest import LTTNG_FIXTURE


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
    require_babeltrace()
    return decode


@pytest.fixture
def bt_details() -> Callable[..., str]:
    """Run babeltrace2's ``sink.text.details`` on a folder; return stdout."""
    babeltrace2 = require_babeltrace()

    def details(trace: Path, *params: str) -> str:
        command = [babeltrace2, str(trace), "-c", "sink.text.details"]
        if params:
            command.append("--params=" + ",".join(params))
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return details
