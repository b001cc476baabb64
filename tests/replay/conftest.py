"""Fixtures for the replay tests: OTLP receivers and the replay command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
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


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for localhost and its key (PEM files)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes"]
        + ["-keyout", str(key), "-out", str(certificate), "-days", "2"]
        + ["-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return str(certificate), str(key)


def clean_env(unset: Sequence[str] = (), **overrides: str) -> dict[str, str]:
    """The environment without OTEL_* settings nor ``unset``, plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in unset
    }
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return env


def run_replay(
    *args: str, unset: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``otelzmq replay ARGS`` in a child process; never hangs."""
    return subprocess.run(
        [sys.executable, "-m", "otelzmq", "replay", *args],
        capture_output=True,
        text=True,
        env=clean_env(unset, **env),
        timeout=120,
        check=False,
    )
