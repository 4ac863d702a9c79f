"""Shared fixtures: a tiny synthetic region, and a throw-away copy of the project
(:mod:`helpers.project`)."""

from __future__ import annotations

import pytest

from analysis.demo.synth import RegionSpec, generate_region
from helpers.project import ROOT, TINY, TINY_PARAMS, make_project


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


@pytest.fixture(scope="session", autouse=True)
def reports_untouched():
    """Tests write to temporary folders, never under the project's reports/, which an
    analyst publishes (screenshots there once went online with the report)."""
    def listing() -> set[str]:
        return {p.relative_to(ROOT).as_posix() for p in (ROOT / "reports").rglob("*")}

    before = listing()
    yield
    added = sorted(listing() - before)
    assert not added, f"tests wrote under reports/: {added[:10]}"
