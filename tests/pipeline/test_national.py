"""A national file: schools of several regions (the optional ``region`` column).

Found at national size (40,000 schools, 2,300 municipalities, 85 regions): the report was
48.5 MB, 24 MB of it the cards of every flagged school, 9 MB the ШНОР list, 5.5 MB the
excluded rows, and the typology by municipality had 2,301 rows.  A report over several
regions now summarises by region what a regional report lists school by school; the full
lists stay in the downloads.  A one-region file reads exactly as before.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from analysis.demo.synth import RegionSpec, generate_region
from analysis.files import FILES
from analysis.pipeline.flow import run_all
from analysis.publish import context_report as cr
from analysis.publish import flags_report as fr
from analysis.publish import report as rp
from analysis.publish.html import by_region, regions_of
from helpers.project import make_project

SPEC = RegionSpec(n_municipalities=24, n_schools=720, n_regions=4, seed=11,
                  write_students=False)
PARAMS = {"clusters": {"k": 3, "n_init": 3, "n_boot": 5}, "report": {"municipal": False}}


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("national") / "proj", generate_region(SPEC),
                        PARAMS)
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    return root, params, run_all(root, params)


def test_the_region_column_is_read_and_kept(national):
    root, _, d = national
    schools = pd.read_parquet(root / FILES["schools"])
    assert schools["region"].nunique() == 4
    assert schools.groupby("municipality")["region"].nunique().max() == 1
    assert regions_of(d) is not None
    download = pd.read_parquet(root / FILES["site"] / "data" / "schools.parquet")
    assert download["region"].notna().all()
    assert list(download.columns).index("region") == list(download.columns).index(
        "municipality") - 1


def test_lists_are_counted_by_region_with_every_school_accounted(national):
    _, params, d = national
    html = fr.section_lists(d, "ru", params["flags"], min_n=params["min_n"], top_n=10)
    listed = d.flags.loc[d.flags["resilient"]]
    assert len(listed) > 0
    regions = regions_of(d)
    table = by_region(fr.resilient_table(listed, "ru", params["min_n"]), regions)
    assert len(table) == 4 and table["n_listed"].sum() == len(listed)
    assert "data-mun" not in html  # no school-by-school rows
    for name in listed["school_name"].astype(str):
        assert name not in html
    assert "Сводный отчёт по 4 регионам" in html


def test_cards_typology_exclusions_and_similar_are_summarised(national):
    _, params, d = national
    cards = fr.section_cards(d, "ru", params["flags"], min_n=params["min_n"])
    assert 'class="card' not in cards and "tables.xlsx" in cards
    typology = fr.section_typology(d, "ru", params["flags"])
    assert "по регионам" in typology
    assert typology.count("<tr") < 4 + 7 + 10 + 4  # header rows + matrix + labels + regions
    excl = rp.section_exclusions(d, "ru", 10)
    assert "data/exclusions.csv" in excl
    similar = cr.section_similar(d, "ru", params["min_n"], 10)
    assert "Сводный отчёт по 4 регионам" in similar


def test_a_one_region_file_lists_schools_as_before(tiny_project):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text(encoding="utf-8"))
    params["report"]["municipal"] = False
    d = run_all(tiny_project, params)
    assert regions_of(d) is None
    html = fr.section_lists(d, "ru", params["flags"], min_n=params["min_n"], top_n=10)
    assert "Сводный отчёт" not in html
    if d.flags["resilient"].any():
        assert "data-mun" in html
