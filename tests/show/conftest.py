"""Fixtures of the ``otelzmq show`` tests."""

from __future__ import annotations

import pytest

from tests.show.showkit import Recorder


@pytest.fixture
def recorder() -> Recorder:
    """A fresh set of hosts with exact clocks."""
    return Recorder()
