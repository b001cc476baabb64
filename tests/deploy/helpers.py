"""Paths and small helpers shared by the deployment tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
SCRIPTS = REPO / "scripts"

#: docker-compose config, resolved: the compose_config fixture's type.
ComposeConfig = Callable[..., dict[str, Any]]


#: Variables the compose file interpolates; the tests resolve it without them
#: so a developer's shell or .env file cannot change the outcome.
_INTERPOLATED_PREFIXES = ("OTELZMQ_", "OTEL_", "COMPOSE_")


def clean_environment() -> dict[str, str]:
    """Return os.environ without the variables the compose file reads."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INTERPOLATED_PREFIXES)
    }


_PARSE_SNIPPET = """
import json, sys
from otelzmq.cli import build_parser
args = build_parser().parse_args(json.loads(sys.argv[1]))
print(json.dumps({k: v for k, v in vars(args).items() if k != "run"}, default=str))
"""


def parse_like_the_container(
    command: list[str], environment: dict[str, str]
) -> dict[str, Any]:
    """Parse ``command`` with the otelzmq CLI under ``environment``."""
    env = clean_environment() | {k: str(v) for k, v in environment.items()}
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_SNIPPET, json.dumps(command)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
