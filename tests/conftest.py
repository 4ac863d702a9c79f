"""Shared fixtures: a tiny synthetic region, and a throw-away copy of the project
(:mod:`helpers.project`)."""

from __future__ import annotations

import pytest

from analysis.demo.synth import RegionSpec, generate_region
from helpers.project import TINY, TINY_PARAMS, make_project


@pytest.fixture(scope="session")
def tiny_region():
    return generate_region(TINY)


@pytest.fixture(scope="session")
def demo_region():
    """The default-size region (about 1,000 schools), generated once per session."""
    return generate_region(RegionSpec())


@pytest.fixture
def tiny_project(tmp_path, tiny_region):
    return make_project(tmp_path / "proj", tiny_region, TINY_PARAMS)
