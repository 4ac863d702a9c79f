"""The regional report's sections, in order: what notebook 05 displays and ``report.html`` holds.

:func:`report_sections` yields one HTML fragment per part of the report (title and main
findings, coverage, the two axes, clusters and similar schools, the social gradient and its
models, the lists, the typology, dynamics, the cards, glossary and methods).  The notebook
displays each fragment; nbconvert keeps only that HTML (:func:`analysis.pipeline.nbrun.export_html`)
and :mod:`analysis.publish.page` wraps it into the page.  There is one assembly path: the
notebook calls :func:`analysis.publish.stage.run` with a display function, which calls this.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.config import section
from analysis.files import FILES
from analysis.i18n import t
from analysis.publish import context_report as cr
from analysis.publish import flags_report as fr
from analysis.publish import report as rp
from analysis.publish import ses_figures as sf
from analysis.publish import ses_report as sr
from analysis.publish.data import ReportData
from analysis.publish.figures import use_style
from analysis.publish.html import heading, para


def report_sections(d: ReportData, params: Mapping[str, Any], root: str | Path = "."
                    ) -> Iterator[str]:
    """The report's HTML fragments, in order.

    Parameters
    ----------
    d : ReportData
        What the report shows (:func:`analysis.publish.data.load_report_data`).
    params : mapping
        The report's parameters, flattened (:func:`analysis.config.flatten`:
        ``year``, ``lang``, ``min_n``, ``report_top_n``, ``flags_z``, ...).
    root : str or Path
        The project (or work) folder the processed files are under.

    Yields
    ------
    str
        One fragment of HTML per part of the report (figures inline, escaped text).
    """
    year, lang, min_n = params["year"], params["lang"], params["min_n"]
    top_n = params["report_top_n"]
    fl = section(params, "flags")  # params.yaml's flags section
    use_style()
    yield _join(rp.section_title(d, lang, min_n, params), rp.section_summary(d, lang))
    yield _join(rp.section_coverage(d, lang, min_n, top_n))
    sy = d.school_year.loc[d.school_year["year"] == year]
    yield _join(
        heading("report.distributions", lang),
        para("report.distributions_text", lang, quality=rp.quality_formula_text(params, lang)),
        rp.figure(rp.fig_distributions(
            d.social_index.loc[d.social_index["year"] == year, "social_index"],
            sy.loc[sy["n_students"] >= min_n, "quality_index"], lang),
                  "distributions", lang, min_n=min_n),
        cr.section_index(d.context_summary, lang),
        cr.section_quality_groups(d.context_summary, lang, min_n))
    c = d.context_summary["clusters"]
    criterion = t("report.criterion_bic" if c["method"] == "gmm"
                  else "report.criterion_silhouette", lang)
    yield _join(
        cr.section_clusters(d, lang, min_n),
        rp.figure(cr.fig_criterion(pd.read_csv(Path(root) / FILES["k_curve"]), c["k"],
                                   c["method"], lang),
                  "criterion", lang, criterion=criterion, k=c["k"]),
        para("report.clusters_heatmap", lang),
        rp.figure(cr.fig_profile_heatmap(d, lang), "heatmap", lang),
        cr.section_similar(d, lang, min_n, top_n))
    est, model = d.estimates, d.ses_link_summary["model"]
    quarters = d.ses_sample["social_index"].quantile([0.25, 0.5, 0.75]).tolist()
    yield _join(
        sr.section_gradient(est, d.ses_sample, lang, year=year, min_n=min_n,
                            spec_text=sr.spec_text(model, lang)),
        rp.figure(sf.fig_gradient(d.ses_sample, d.ses_curve, tuple(model["support_bounds"]),
                                  quarters, lang, shnsu_cut=fr.shnsu_cut_on_index(d),
                                  resilient=d.flags.loc[d.flags["resilient"], "school_id"]),
                  "gradient", lang, year=year),
        sr.gradient_by_table(est, lang, year=year),
        rp.figure(sf.fig_small_multiples(d.component_points, est, lang, year=year),
                  "small_multiples", lang, year=year),
        sr.section_binomial(est, lang, year=year),
        sr.section_multilevel(est, lang, year=year, top_n=top_n),
        rp.figure(sf.fig_variance(est, lang, year=year), "variance", lang, year=year),
        rp.figure(sf.fig_caterpillar(est, lang, year=year), "caterpillar", lang, year=year),
        sr.section_students(est, lang, year=year))
    yield _join(fr.section_lists(d, lang, fl, min_n=min_n, top_n=top_n))
    yield _join(fr.section_typology(d, lang, fl))
    yield _join(rp.section_dynamics(d, lang, min_n, top_n))
    yield _join(fr.section_cards(d, lang, fl, min_n=min_n))
    yield _join(rp.section_glossary(lang), rp.section_methods(d, lang, params))


def _join(*parts: str) -> str:
    return "\n".join(parts)
