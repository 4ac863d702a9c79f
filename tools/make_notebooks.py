"""Write the pipeline's source notebooks (no outputs) from the cell lists below.

The notebooks are committed; this script is how they were written and the easy way to
change them consistently:  python tools/make_notebooks.py
Each notebook: a title, a `parameters` cell mirroring its params.yaml sections (a test
checks they match), then short cells that call analysis.stages / analysis.report.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"name": "school-context", "display_name": "Python (school-context)", "language": "python"}


def params_cell(stage: str) -> nbformat.NotebookNode:
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    from analysis.config import stage_parameters

    values = stage_parameters(stage, ROOT)
    lines = ["# Parameters: defaults mirror params.yaml; papermill injects the pipeline's values."]
    lines += [f"{k} = {v!r}" for k, v in values.items()]
    cell = new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["parameters"]
    return cell


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


NOTEBOOKS = {
    "01_prepare": [
        md("""
# 01 · Prepare: read, check and tidy the raw tables

Reads `schools` and `results` from the raw folder (the data contract), checks them
against each other, and writes tidy Parquet tables to `data/processed/`, with the
quality index per school and year. A contract breach stops the run with a message that
names the file, row and column.
"""),
        "params",
        code("""
from analysis import stages

out = stages.run_prepare(
    year=year, raw_dir=prepare_raw_dir, mapping=prepare_mapping, sheet=prepare_sheet,
    header_row=prepare_header_row, lang=lang, quality_procedures=prepare_quality_procedures,
    quality_subjects=prepare_quality_subjects, quality_grades=prepare_quality_grades,
)
"""),
        md("Rows per year in each table, and the rows this stage set aside (with reasons)."),
        code("""
out.schools.groupby("year").size().rename("schools").to_frame().join(
    out.results.groupby("year").size().rename("result rows"))
"""),
        code("out.accounting"),
        md("Quality index (share of marks 4 and 5 in the chosen procedures) by year."),
        code("out.school_year.groupby('year')[['quality_index', 'n_students']].describe().T"),
    ],
    "02_context_clusters": [
        md("""
# 02 · Context: the social well-being index and clusters of schools

The index combines the social passport shares (signs and method in `params.yaml`,
section `index`), standardised within each year. k-means then groups the reporting
year's schools by standardised context features (section `clusters`); cluster 1 is the
least favourable context.
"""),
        "params",
        code("""
from analysis import stages

ctx = stages.run_context(
    year=year, indicators=index_indicators, method=index_method,
    min_indicators=index_min_indicators, features=clusters_features, k=clusters_k,
    n_init=clusters_n_init, seed=clusters_seed,
)
ctx.index.groupby("year")["social_index"].describe()
"""),
        md("Cluster centres in the features' own units, and the silhouette (separation, −1..1)."),
        code("""
import pandas as pd

sizes = pd.Series(ctx.model.labels_).value_counts().rename("n")
ctx.model.centers_.round(3).join(sizes)
"""),
        code("print(f'silhouette = {ctx.model.silhouette_:.3f}')"),
        md("How inertia and silhouette change with k (also a DVC plot: `dvc plots show`)."),
        code("ctx.k_curve.round(3)"),
    ],
    "03_ses_link": [
        md("""
# 03 · The link between social status and results

A school-level regression of the quality index on the social well-being index, weighted
by the number of students behind each school's quality index, with robust standard
errors. Schools with fewer than `min_n` students are left out (and listed in the ledger).
"""),
        "params",
        code("""
from analysis import stages

gradient, sample = stages.run_ses_link(
    year=year, min_n=min_n, quadratic=ses_link_quadratic, cov_type=ses_link_cov_type,
)
gradient.to_dict(4)
"""),
        md("Residuals (observed − expected quality) by school type."),
        code("sample.groupby('school_type')['residual'].describe().round(3)"),
    ],
    "04_flags": [
        md("""
# 04 · Flags: resilient schools, ШНОР, ШНСУ, typology

Resilient: unfavourable context and results above what the context predicts, beyond
sampling noise, without signs of non-objective ВПР. ШНОР: the federal rule on shares of
«2». Each flag carries its interval and number of students.
"""),
        "params",
        code("""
from analysis import stages

res = stages.run_flags(
    year=year, low_context_quantile=flags_low_context_quantile, z=flags_z,
    min_effect=flags_min_effect, objectivity_threshold=flags_objectivity_threshold,
    shnor_threshold=flags_shnor_threshold, shnor_procedures=flags_shnor_procedures,
    shnor_min_participants=flags_shnor_min_participants,
)
res.flags["typology"].value_counts()
"""),
        code("res.shnor[['criterion_1', 'criterion_2', 'shnor']].sum()"),
        code("res.flags.loc[res.flags['resilient'], ['school_id', 'social_index', 'residual', 'ci_low', 'n_students']].round(3)"),
    ],
    "05_report": [
        code("""
import matplotlib.pyplot as plt
from IPython.display import HTML, display

from analysis import report as rp
from analysis import stages
from analysis.config import stage_parameters

params = {name: globals()[name] for name in stage_parameters("05_report")}  # as injected
d = stages.load_report_data(year=year)
display(HTML(rp.section_title(d, lang, min_n)))
display(HTML(rp.section_summary(d, lang)))
"""),
        code("""
display(HTML(rp.heading("report.distributions", lang) + rp.para("report.distributions_text", lang)))
sy = d.school_year.loc[d.school_year["year"] == year]
fig = rp.fig_distributions(d.index.loc[d.index["year"] == year, "social_index"],
                           sy.loc[sy["n_students"] >= min_n, "quality_index"], lang)
display(fig)
plt.close(fig)
"""),
        code("display(HTML(rp.section_clusters(d, lang, min_n)))"),
        code("""
g = d.gradient
display(HTML(rp.heading("report.gradient", lang)
             + rp.para("report.gradient_text", lang, min_n=min_n, cov=g["cov_type"])
             + rp.gradient_table(g, lang)))
fig = rp.fig_gradient(d.flags, g["intercept"], g["slope"],
                      g["quad"] if g["quadratic_in_fit"] else None, lang)
display(fig)
plt.close(fig)
"""),
        code("""
display(HTML(rp.section_lists(
    d, lang, min_n=min_n, top_n=report_top_n, q=flags_low_context_quantile,
    min_effect=flags_min_effect, threshold=flags_shnor_threshold,
    obj_threshold=flags_objectivity_threshold)))
"""),
        code("display(HTML(rp.section_typology(d, lang, flags_low_context_quantile)))"),
        code("display(HTML(rp.section_dynamics(d, lang)))"),
        code("""
display(HTML(rp.section_methods(lang, params)))
display(HTML(rp.section_exclusions(d, lang, report_top_n)))
"""),
        code("""
metrics = rp.build_metrics(d, params)
rp.write_metrics("reports/metrics.json", metrics)
""", "remove"),
    ],
}


def build(stage: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for c in cells:
        out.append(params_cell(stage) if c == "params" else c)
    if stage == "05_report":
        pc = params_cell(stage)
        setup = code("%matplotlib inline\n%config InlineBackend.figure_formats = ['png']", "remove")
        out = [pc, setup] + out
    nb.cells = out
    return nb


def main() -> None:
    for stage, cells in NOTEBOOKS.items():
        nb = build(stage, cells)
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{stage[:2]}-{i:02d}"
        nbformat.validate(nb)
        nbformat.write(nb, ROOT / "notebooks" / f"{stage}.ipynb")
        print("wrote", stage)


if __name__ == "__main__":
    main()
