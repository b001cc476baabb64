"""Fixtures for the deployment files: compose, Dockerfile, collector, netns."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

from .helpers import COMPOSE_FILE, REPO, ComposeConfig, clean_environment


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """Path of the docker-compose 1.x executable, or skip."""
    path = shutil.which("docker-compose")
    if path is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    return path


@pytest.fixture(scope="session")
def compose_config(
    docker_compose: str, tmp_path_factory: pytest.TempPathFactory
) -> ComposeConfig:
    """Resolve docker-compose.yml with ``docker-compose config``.

    The returned callable takes extra global options (``--profile X``,
    ``--env-file F``) and returns the resolved file as a dict. An empty env
    file replaces any ``.env`` in the checkout unless one is given.
    """
    empty_env = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env.write_text("")
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def resolve(*options: str) -> dict[str, Any]:
        if options not in cache:
            env_file = () if "--env-file" in options else ("--env-file", empty_env)
            command = [
                docker_compose,
                "--project-directory",
                str(REPO),
                "--file",
                str(COMPOSE_FILE),
                *map(str, env_file),
                *options,
                "config",
            ]
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=clean_environment(),
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            cache[options] = yaml.safe_load(result.stdout)
        return cache[options]

    return resolve


@pytest.fixture(scope="session")
def compose_source() -> dict[str, Any]:
    """docker-compose.yml as written (profiles, anchors already merged)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def cli_available() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "from otelzmq.cli import build_parser; build_parser()"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        last = probe.stderr.strip().splitlines()[-1:] or ["unknown error"]
        pytest.skip(f"the otelzmq sub-commands do not load yet: {last[0]}")
