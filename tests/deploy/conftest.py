"""Fixtures for the deployment files: compose, Dockerfile, collector, netns."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from .helpers import COMPOSE_FILE, REPO

#: Variables the compose file interpolates; the tests resolve it without them
#: so a developer's shell or .env file cannot change the outcome.
_INTERPOLATED_PREFIXES = ("OTELZMQ_", "OTEL_", "COMPOSE_")

ComposeConfig = Callable[..., dict[str, Any]]


def clean_environment() -> dict[str, str]:
    """Return os.environ without the variables the compose file reads."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INTERPOLATED_PREFIXES)
    }


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
