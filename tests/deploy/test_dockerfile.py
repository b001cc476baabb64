"""Static checks of the Dockerfile and .dockerignore (no Docker engine here).

The Dockerfile is parsed by hand: the format is line based, and the checks
only need instructions grouped by build stage.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import REPO, parse_like_the_container

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [text for word, text in self.instructions if word == keyword]


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments and blank lines."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending.strip())
    return lines


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Return the global ARG defaults and the build stages of ``path``."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(
                r"\$\{(\w+)\}|\$(\w+)",
                lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)),
                words[0],
            )
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif not stages and keyword == "ARG":
            arg_name, _, default = rest.partition("=")
            global_args[arg_name] = default
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE)[1]


def test_every_stage_uses_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    assert {stage.base for stage in stages} == {"python:3.11-slim"}


def test_builder_stage_builds_a_wheel(stages: list[Stage]) -> None:
    builder = stages[0]
    runs = " ".join(builder.arguments("RUN"))
    assert "pip wheel" in runs
    assert "--wheel-dir /wheels" in runs


def test_final_stage_installs_wheels_without_compilers(stages: list[Stage]) -> None:
    final = stages[-1]
    runs = " ".join(final.arguments("RUN"))
    assert "pip install" in runs
    assert "--no-index" in runs, "the final stage must install only built wheels"
    assert f"from={stages[0].name}" in runs
    for compiler in ("build-essential", "gcc", "g++", "make ", "-dev "):
        assert compiler not in runs + " ", f"{compiler.strip()} in the final stage"
    # Nothing from the builder other than its wheels reaches the final stage.
    for copy in final.arguments("COPY"):
        assert "--from" not in copy


def test_final_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    global_args, _ = parse_dockerfile(DOCKERFILE)
    final = stages[-1]
    users = final.arguments("USER")
    assert users, "the final stage must set USER"
    stage_args = dict(a.partition("=")[::2] for a in final.arguments("ARG"))
    user = re.sub(
        r"\$\{(\w+)\}",
        lambda m: stage_args.get(m.group(1)) or global_args.get(m.group(1), ""),
        users[-1],
    )
    name, _, group = user.partition(":")
    assert name not in ("", "root", "0")
    assert group not in ("root", "0")


def test_entrypoint_is_otelzmq_with_a_role_as_command(stages: list[Stage]) -> None:
    final = stages[-1]
    entrypoint = json.loads(final.arguments("ENTRYPOINT")[-1])
    command = json.loads(final.arguments("CMD")[-1])
    assert entrypoint == ["otelzmq"]
    assert command and command[0] in {"up", "proxy", "server", "client"}


def test_copied_files_exist_and_are_not_ignored(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages:
        for copy in stage.arguments("COPY"):
            words = [w for w in shlex.split(copy) if not w.startswith("--")]
            for source in words[:-1]:
                assert (REPO / source).exists(), f"COPY source {source} is missing"
                assert not ignored(source.rstrip("/"), patterns), source


def ignored(path: str, patterns: list[str]) -> bool:
    """Apply .dockerignore rules (last match wins, ``!`` re-includes)."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            result = not negate
    return result


def test_dockerignore_keeps_the_build_context_small() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for unwanted in ("out", ".git", "tests", "bench", ".venv"):
        assert ignored(unwanted, patterns), unwanted
    for wanted in ("pyproject.toml", "src/otelzmq/cli.py", "deploy/with-output-log.sh"):
        assert not ignored(wanted, patterns), wanted


def build_context(destination: Path) -> Path:
    """Copy the files Docker would send as build context to ``destination``."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return destination


def offline_wheel_builds_possible() -> bool:
    """True when setuptools here can build a wheel without build isolation."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (70, 1)


@pytest.mark.slow
def test_builder_stage_command_builds_the_project_wheel(tmp_path: Path) -> None:
    if not offline_wheel_builds_possible():
        pytest.skip("building a wheel offline needs setuptools>=70.1 or wheel")
    if not (REPO / "README.md").exists():
        pytest.fail("README.md is missing; pyproject.toml and the image need it")
    context = build_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-cache-dir",
            "--wheel-dir",
            str(wheels),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = wheels.glob("otelzmq-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "otelzmq/cli.py" in names
    assert any(name.endswith("entry_points.txt") for name in names)


def stage_environment(stage: Stage) -> dict[str, str]:
    """The ``ENV key=value`` pairs a stage sets."""
    environment: dict[str, str] = {}
    for text in stage.arguments("ENV"):
        for pair in shlex.split(text):
            key, _, value = pair.partition("=")
            environment[key] = value
    return environment


@pytest.mark.usefixtures("cli_available")
def test_default_command_writes_where_the_image_expects(stages: list[Stage]) -> None:
    final = stages[-1]
    environment = stage_environment(final)
    assert environment["OTELZMQ_OUT"] == "/out"
    command = json.loads(final.arguments("CMD")[-1])

    args = parse_like_the_container(command, environment)

    assert args["out"] == environment["OTELZMQ_OUT"]
    runs = " ".join(final.arguments("RUN"))
    assert "chown otelzmq:otelzmq /out" in runs
