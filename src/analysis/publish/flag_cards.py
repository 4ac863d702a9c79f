"""The "why this school" cards: one per school on any list, in plain words.

:func:`card_lines` gives each school's lines (its context, the expected and the actual
result by procedure, the effect, the years above expected, the specifications it held in,
the signs of non-objectivity, ШНОР, ШНСУ, the risk zone, similar schools);
:func:`school_cards` makes them escaped HTML cards, shown in the report's section 5.7
(:func:`analysis.publish.flags_report.section_cards`) and on the municipal pages
(:mod:`analysis.publish.site`).  Inputs are the stage 04 outputs in
:class:`analysis.publish.data.ReportData` (``flags``, ``flag_cards``, ``shnor_details``,
``objectivity``, ``similar_peers``); a procedure with fewer than ``min_n`` participants is
«н/д» on a card.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.i18n import label, t
from analysis.publish.data import ReportData
from analysis.publish.flag_text import (
    SCREENS,
    _blank_na,
    _criteria,
    _factor_label,
    _students_context,
    context_of,
    effect_ci,
    flag_params,
    fmt_values,
    labels_of,
    outcomes_of,
    prob_text,
    risk_reasons,
    school_names,
    shnor_procedures,
    student_status,
)
from analysis.publish.html import stat

#: Lists whose schools get a "why this school" card, in the order of the card's title.
CARD_LISTS = ("resilient", "needs_review", "shnor", "shnsu", "risk_zone", "objectivity_flag")
#: Similar schools named on a card.
MAX_PEERS = 5


def flagged(f: pd.DataFrame) -> pd.Series:
    """Schools on any list of :data:`CARD_LISTS`."""
    return f[[c for c in CARD_LISTS if c in f]].astype(bool).any(axis=1)


def lists_text(f: pd.DataFrame, lang: str) -> pd.Series:
    """The lists each school is on, as catalogue labels joined by ", "."""
    out = pd.Series("", index=f.index, dtype=object)
    for c in CARD_LISTS:
        if c in f:
            out = out + np.where(f[c].astype(bool), label("list", c, lang) + ", ", "")
    return out.str.rstrip(", ")


def _outcome_lines(d: ReportData, f: pd.DataFrame, lang: str, min_n: int) -> pd.Series:
    """Per school of ``f`` (index school_id): one line per outcome, the expected result
    factor by factor and the actual one, or «н/д» when fewer than ``min_n`` took part."""
    cards = d.flag_cards
    outcomes = outcomes_of(d)
    if not outcomes:
        return pd.Series("", index=pd.Index(f["school_id"]), dtype=object)
    grid = pd.MultiIndex.from_product([f["school_id"].to_numpy(), outcomes],
                                      names=["school_id", "outcome"]).to_frame(index=False)
    c = grid.merge(cards, on=["school_id", "outcome"], how="left")
    fixed = {"school_id", "outcome", "value", "n", "fitted", "region"}
    factors = [x for x in cards.columns if x not in fixed]
    factors = [x for x in factors if x != "municipality"] + (
        ["municipality"] if "municipality" in factors
        and pd.to_numeric(cards["municipality"], errors="coerce").abs().max() > 1e-6 else [])
    na_t = t("value.na", lang)
    parts = fmt_values(c["region"], ".2f", na_t) + " (" + t("factor.region", lang) + ")"
    for x in factors:
        v = pd.to_numeric(c[x], errors="coerce").astype("float64")
        sign = pd.Series(np.where(v < 0, " − ", " + "), index=c.index, dtype=object)
        parts = parts + sign + fmt_values(v.abs(), ".2f", na_t) + " (" + _factor_label(
            x, lang) + ")"
    ok = pd.to_numeric(c["n"], errors="coerce").fillna(0).ge(min_n).to_numpy()
    outcome = labels_of(c["outcome"], "procedure", lang)
    full = t("flags.card_expected", lang, outcome="\1", fitted="\2", parts="\3", value="\4",
             n="\5")
    fitted = fmt_values(c["fitted"], ".2f", na_t)
    value = fmt_values(c["value"], ".2f", na_t)
    n = c["n"].astype("Int64").astype("string").fillna("")
    lines = [full.replace("\1", o).replace("\2", fi).replace("\3", pa).replace("\4", va)
             .replace("\5", k) if good else
             t("flags.card_outcome_na", lang, outcome=o, min_n=min_n)
             for o, fi, pa, va, k, good in zip(outcome, fitted, parts, value, n, ok)]
    return pd.Series(lines, index=c.index, dtype=object).groupby(
        c["school_id"].to_numpy(), sort=False).agg("\n".join)


def _objectivity_lines(d: ReportData, f: pd.DataFrame, lang: str) -> pd.Series:
    """Per school: the screens that fired, or those assessed, or why none was."""
    obj = d.objectivity if "school_id" in d.objectivity else pd.DataFrame(
        {"school_id": pd.Series(dtype="string")})
    obj = obj.set_index("school_id").reindex(f["school_id"])
    fired, assessed, why = ([""] * len(obj) for _ in range(3))
    fired = pd.Series(fired, index=obj.index, dtype=object)
    assessed = pd.Series(assessed, index=obj.index, dtype=object)
    why = pd.Series(why, index=obj.index, dtype=object)
    for s in SCREENS:
        if s not in obj:
            continue
        v = obj[s].astype("boolean")
        name = label("screen", s, lang)
        fired = fired + np.where(v.fillna(False).to_numpy(dtype=bool), name + "; ", "")
        assessed = assessed + np.where(v.notna().to_numpy(), name + "; ", "")
        r = obj.get(f"{s}_reason", pd.Series("", index=obj.index)).fillna("").astype(str)
        reason = labels_of(_blank_na(r), "reason", lang)
        why = why + np.where(v.isna().to_numpy() & r.ne("").to_numpy(),
                             name + ": " + reason + "; ", "")
    fired, assessed, why = (x.str.rstrip("; ") for x in (fired, assessed, why))
    out = [t("flags.card_objectivity_flag", lang, screens=a) if a else
           t("flags.card_objectivity_ok", lang, screens=b) if b else
           t("flags.card_objectivity_na", lang, reasons=c or t("value.na", lang))
           for a, b, c in zip(fired, assessed, why)]
    return pd.Series(out, index=obj.index, dtype=object)


def _peer_names(d: ReportData, f: pd.DataFrame) -> pd.Series:
    """Up to :data:`MAX_PEERS` similar schools of each school, by closeness."""
    peers = d.similar_peers
    if peers is None or peers.empty:
        return pd.Series("", index=pd.Index(f["school_id"]), dtype=object)
    names = school_names(d)["school_name"]
    pr = peers.loc[peers["school_id"].isin(f["school_id"])].sort_values(
        ["school_id", "order"], kind="stable")
    pr = pr.groupby("school_id", sort=False).head(MAX_PEERS)
    named = pr.assign(name=pr["peer_id"].map(names)).dropna(subset=["name"])
    return named.groupby("school_id", sort=False)["name"].agg("; ".join).reindex(
        f["school_id"]).fillna("")


def card_lines(d: ReportData, f: pd.DataFrame, lang: str, p: Mapping[str, Any], *,
               min_n: int, compact: bool = False) -> pd.DataFrame:
    """The lines of each school's card (plain text, one column per kind of line, "" where a
    line does not apply), index ``school_id``.

    ``compact`` (the regional report's cards) leaves out what the page shows elsewhere or
    the municipal report has: the named ШНОР procedures (in the ШНОР table), the similar
    schools, and the objectivity line of a school without a signal."""
    f = f.set_index("school_id", drop=False)
    na_t = t("value.na", lang)
    ctx = context_of(f)
    index = fmt_values(f["social_index"], "+.2f", na_t)
    if _students_context(f):  # the students' status where it was the measure
        status = student_status(f, lang, min_n)
        extra = t("flags.card_students", lang, value="\0")
        index = index + pd.Series(np.where(f["context_source"].eq("students"), [
            extra.replace("\0", x) for x in status], ""), index=f.index, dtype=object)
    context = [t("flags.card_context", lang, index=i, context=c, settlement=s, school_type=k)
               for i, c, s, k in zip(index, labels_of(ctx, "context", lang),
                                     labels_of(f["settlement_type"], "settlement_type", lang,
                                               na_t),
                                     labels_of(f["school_type"], "school_type", lang, na_t))]
    effect = [t("flags.card_effect", lang, effect=e, direction=r, typology=g) for e, r, g in zip(
        effect_ci(f, lang), labels_of(f["direction"], "direction", lang, na_t),
        labels_of(f["typology"], "typology", lang, na_t))]
    years = [("" if n <= 0 else t("flags.card_years", lang, years=y, assessed=n) if y else
              t("flags.card_years_none", lang, assessed=n))
             for y, n in zip(f["years_above_list"].fillna(""), f["years_assessed"])]
    show_specs = f["resilient"] | f["needs_review"] | (f["specs_held"] > 0)
    failed = f["specs_failed"].fillna("").astype(str).str.split(r",\s*").explode()
    failed = failed.loc[failed.ne("")]
    failed_words = labels_of(failed, "spec", lang).groupby(level=0, sort=False).agg(
        "; ".join).reindex(f.index).fillna("")
    specs = [("" if not show else t("flags.card_specs_failed", lang, held=h, total=n,
                                    failed=w) if w else
              t("flags.card_specs", lang, held=h, total=n))
             for show, h, n, w in zip(show_specs, f["specs_held"], f["specs_total"],
                                      failed_words)]
    procs = shnor_procedures(d, lang, min_n)
    key = "flags.card_shnor_compact" if compact else "flags.card_shnor"
    shnor = [("" if not on else t(key, lang, criteria=c, label=lb, p=pr,
                                  procedures=pc or na_t))
             for on, c, lb, pr, pc in zip(
                 f["shnor"], _criteria(f, d.year, lang),
                 labels_of(_blank_na(f["shnor_label"]), "shnor_label", lang, na_t),
                 prob_text(f["p_rule"], lang), f["school_id"].map(procs).fillna(""))]
    cut = p.get("_shnsu_cut")
    shnsu = [("" if not on else t("flags.card_shnsu", lang, ref=p.get(
        "_shnsu_reference_year") or na_t, value=v, cut=stat(cut, "+.2f", lang)))
             for on, v in zip(f["shnsu"], fmt_values(f["anchored_index"], "+.2f", na_t))]
    risk = [("" if not on else t("flags.card_risk", lang, reasons=r))
            for on, r in zip(f["risk_zone"], risk_reasons(f, lang))]
    peers = [("" if not x or compact else t("flags.card_peers", lang, names=x))
             for x in _peer_names(d, f)]
    return pd.DataFrame({
        "context": context, "outcomes": _outcome_lines(d, f, lang, min_n).reindex(
            f.index).fillna(""),
        "effect": effect, "years": years, "specs": specs,
        "objectivity": np.where(compact & ~f["objectivity_flag"].astype(bool).to_numpy(), "",
                                _objectivity_lines(d, f, lang).to_numpy()),
        "shnor": shnor, "shnsu": shnsu, "risk": risk, "peers": peers,
    }, index=f.index)


def school_cards(d: ReportData, lang: str, flags: Mapping[str, Any] | None = None, *,
                 min_n: int, compact: bool = False) -> pd.Series:
    """One HTML card per school on any list (:data:`CARD_LISTS`), index ``school_id``:
    ``<details><summary>name — lists</summary><ul>…</ul></details>``, every text escaped."""
    p = flag_params(d, flags)
    f = d.flags.loc[flagged(d.flags)]
    lines = card_lines(d, f, lang, p, min_n=min_n, compact=compact)
    title = f["school_name"].fillna(f["school_id"]).astype(str).to_numpy() + " — " + \
        lists_text(f, lang).to_numpy()
    cards = []
    for head, row in zip(title, lines.itertuples(index=False)):
        items = "".join(f"<li>{html.escape(x)}</li>" for cell in row
                        for x in str(cell).split("\n") if x)
        cards.append(f'<details class="sc-card"><summary>{html.escape(head)}</summary>'
                     f"<ul>{items}</ul></details>")
    return pd.Series(cards, index=lines.index, dtype=object)
