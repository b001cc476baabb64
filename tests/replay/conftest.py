"""Fixtures for the replay tests: OTLP receivers and the replay command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replay.receivers import GrpcReceiver, HttpReceiver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    with GrpcReceiver() as receiver:
        yield receiver


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment without OTEL_* settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return env


def run_replay(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``otelzmq replay ARGS`` in a child process; never hangs."""
    return subprocess.run(
        [sys.executable, "-m", "otelzmq", "replay", *args],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        timeout=120,
        check=False,
    )
