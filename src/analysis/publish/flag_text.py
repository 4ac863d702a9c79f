"""A school's flags in words, as the lists, the cards and the municipal pages print them.

The flags' parameters for the texts (:func:`flag_params`), numbers and category codes
formatted a column at a time (:func:`fmt_values`, :func:`labels_of`, :func:`effect_ci`,
:func:`prob_text`: a value that could not be computed is «н/д» or "", never "nan"), the
schools' latest names, and the phrases about one school that both a list of section 5 and the
school's card print: the students' status, the low ШНОР procedures and the criteria met, why
the school is in the risk zone, its context.  Nothing computed from fewer than ``min_n``
participants is named or shown: a smaller ШНОР procedure is only counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.i18n import label, t
from analysis.ingest.schema import PROCEDURES
from analysis.publish.data import ReportData

#: Objectivity screens (analysis.flags.objectivity.SCREENS).
SCREENS = ("vpr_oge", "top_marks", "heaping")


# --- parameters and formatting ---------------------------------------------------------------

def flag_params(d: ReportData, flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``params.yaml``'s ``flags`` section for the texts, completed from what stage 04
    recorded in ``flags.json`` (``z``, ``n_years``, ``multilevel``, ``year_weights``, the
    cuts).  A key that is still unknown leaves out the sentence that needs it."""
    p = dict(flags or {})
    s = d.flags_summary or {}
    spec = s.get("spec") or {}
    for key, value in (("z", spec.get("z")), ("n_years", spec.get("n_years")),
                       ("multilevel", spec.get("multilevel")),
                       ("year_weights", spec.get("weights"))):
        if p.get(key) is None and value is not None:
            p[key] = value
    p["_low_context_cut"] = s.get("low_context_cut")
    p["_shnsu_cut"] = s.get("shnsu_cut")
    p["_shnsu_reference_year"] = s.get("shnsu_reference_year") or p.get("shnsu_reference_year")
    p["_terms"] = spec.get("terms")
    if s.get("min_years") is not None:  # stage 04 lowers it in a region with fewer years
        p["_min_years"] = s["min_years"]
    else:
        p["_min_years"] = p.get("min_years")
    p["_context"] = s.get("context")  # schools by context source: {"index": n, "students": m}
    return p


def context_col(f: pd.DataFrame) -> str:
    """The column of the context measure the flags used: ``context_index`` (stage 04 with
    the students' status) or ``social_index``."""
    return "context_index" if "context_index" in f else "social_index"


def _blank_na(s: pd.Series) -> pd.Series:
    """``s`` with empty strings as missing values."""
    return s.astype(object).mask(s.fillna("").astype(str).eq(""))


def fmt_values(values: Any, spec: str, na_text: str = "") -> pd.Series:
    """Format numbers with ``spec`` (``"+.2f"``, ``".1%"``) without a Python loop; a missing
    value becomes ``na_text``, never "nan"; "-0.00" becomes "0.00"."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64")
    arr = x.to_numpy()
    ok = np.isfinite(arr)
    pct = spec.endswith("%")
    core = spec[:-1] + "f" if pct else spec
    text = np.char.mod("%" + core, np.where(ok, arr * (100.0 if pct else 1.0), 0.0))
    out = pd.Series(text, index=x.index, dtype=object).str.replace(r"^-(?=[^1-9]*$)", "",
                                                                    regex=True)
    if pct:
        out = out + "%"
    return out.where(ok, na_text)


def labels_of(values: pd.Series, kind: str, lang: str, empty: str = "") -> pd.Series:
    """Catalogue labels of category codes (one look-up per distinct code)."""
    codes = values.astype(object).where(values.notna(), None)
    known = {v: label(kind, v, lang) for v in pd.unique(codes.dropna())}
    out = codes.map(known).astype(object)
    return out.where(out.notna(), empty)


def effect_ci(f: pd.DataFrame, lang: str, *, digits: int = 2) -> pd.Series:
    """"+0.12 [+0.07; +0.17]" per school, or «н/д (reason)»."""
    spec = f"+.{digits}f"
    est, lo, hi = (fmt_values(f[c], spec) for c in ("effect", "effect_low", "effect_high"))
    text = est + " [" + lo + "; " + hi + "]"
    reason = f["effect_reason"] if "effect_reason" in f else pd.Series("", index=f.index)
    reason = reason.fillna("").astype(str)
    mark = t("value.na", lang)
    why = {r: f"{mark} ({label('reason', r, lang)})" if r else mark for r in reason.unique()}
    return text.where(f["effect"].notna().to_numpy(), reason.map(why))


def prob_text(p: pd.Series, lang: str) -> pd.Series:
    """A probability as a whole percentage, "> 99%" / "< 1%" at the ends."""
    x = pd.to_numeric(p, errors="coerce").astype("float64")
    out = fmt_values(x, ".0%", t("value.na", lang))
    out = out.mask(x >= 0.995, t("flags.p_high", lang))
    return out.mask(x < 0.005, t("flags.p_low", lang))


def outcomes_of(d: ReportData) -> list[str]:
    """The outcomes (procedures) of the cards: ВПР, ОГЭ, ЕГЭ first, then any other code."""
    have = set(d.flag_cards["outcome"].dropna()) if len(d.flag_cards) else set()
    return [o for o in PROCEDURES if o in have] + sorted(have - set(PROCEDURES))


def school_names(d: ReportData) -> pd.DataFrame:
    """``school_id`` -> the latest ``school_name`` and ``municipality`` over all years (a
    school that left the data keeps a name)."""
    s = d.schools.sort_values(["school_id", "year"], kind="stable")
    return s.drop_duplicates("school_id", keep="last").set_index("school_id")[
        ["school_name", "municipality"]]


# --- one school in words: a list's cell, a card's line ---------------------------------------

def student_status(f: pd.DataFrame, lang: str, min_n: int) -> pd.Series:
    """The students' mean status where it was the context measure, «н/д» where fewer than
    ``min_n`` students stand behind it (it is student data), "" where the index was used."""
    na_small = f"{t('value.na', lang)} ({t('na.few_students', lang, min_n=min_n)})"
    value = fmt_values(f["context_index"], "+.2f", t("value.na", lang))
    n = pd.to_numeric(f.get("context_n", pd.Series(pd.NA, index=f.index)), errors="coerce")
    small = n.isna() | (n < min_n)
    return pd.Series(np.where(f["context_source"].ne("students"), "",
                              np.where(small, na_small, value)), index=f.index, dtype=object)


def _students_context(f: pd.DataFrame) -> bool:
    return "context_source" in f and bool(f["context_source"].eq("students").any())


def _factor_label(col: str, lang: str) -> str:
    try:
        return t(f"factor.{col}", lang)
    except KeyError:
        return str(col)


def shnor_procedures(d: ReportData, lang: str, min_n: int) -> pd.Series:
    """Per ШНОР school (index ``school_id``): its low procedures of both years with at
    least ``min_n`` participants, named with their share, then the number of the others
    («ещё процедур с числом участников меньше {min_n}: N»): a small procedure is never
    named and its share never shown."""
    ids = d.flags.loc[d.flags["shnor"], "school_id"]
    det = d.shnor_details
    if "low" in det:
        det = det.loc[det["low"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    det = det.loc[det["school_id"].isin(ids)].sort_values(
        ["school_id", "year", "procedure", "subject", "grade"], kind="stable")
    n = pd.to_numeric(det["participants"], errors="coerce").fillna(0)
    big = det.loc[n >= min_n]
    template = t("flags.shnor_procedure", lang)
    texts = [template.format(procedure=a, grade=g, subject=s, year=y, share=sh, n=k)
             for a, g, s, y, sh, k in zip(
                 labels_of(big["procedure"], "procedure", lang),
                 big["grade"].astype("string").fillna(""),
                 labels_of(big["subject"], "subject", lang),
                 big["year"].astype("string").fillna(""),
                 fmt_values(big["share_low"], ".0%", t("value.na", lang)),
                 big["participants"].astype("Int64").astype("string"))]
    named = pd.Series(texts, index=big.index, dtype=object).groupby(
        big["school_id"].to_numpy()).agg("; ".join)
    small = (n < min_n).groupby(det["school_id"].to_numpy()).sum()
    out = []
    for sid in ids:
        text, k = named.get(sid, ""), int(small.get(sid, 0))
        if k:
            key = "flags.shnor_small_more" if text else "flags.shnor_small_only"
            text = "; ".join(x for x in (text, t(key, lang, min_n=min_n, n=k)) if x)
        out.append(text)
    return pd.Series(out, index=pd.Index(ids.to_numpy(), name="school_id"), dtype=object)


def _criteria(f: pd.DataFrame, year: int, lang: str) -> pd.Series:
    c1 = f["n_low_year"] >= 2
    c2 = (f["n_low_year"] >= 1) & (f["n_low_prev"] >= 1)
    t1 = t("value.criterion_1", lang, year=year)
    t2 = t("value.criterion_2", lang, year=year, prev=year - 1)
    both = pd.Series(np.where(c1 & c2, t1 + "; " + t2, np.where(c1, t1, np.where(c2, t2, ""))),
                     index=f.index, dtype=object)
    return both


def risk_reasons(f: pd.DataFrame, lang: str, *, trend: bool = True) -> pd.Series:
    """Why each school is in the risk zone (decline, with its trend per year, and/or low
    context and below expected)."""
    slope = fmt_values(f["trend"], "+.3f", t("value.na", lang))
    decl = (t("flags.risk_declining", lang, trend="\0") if trend
            else t("criterion.declining", lang))
    a = pd.Series(np.where(f["declining"], [decl.replace("\0", x) for x in slope], ""),
                  index=f.index, dtype=object)
    b = pd.Series(np.where(f["risk_low_below"], t("flags.risk_low_below", lang), ""),
                  index=f.index, dtype=object)
    both = a.str.cat(b, sep="; ")
    return both.str.strip("; ")


def context_of(f: pd.DataFrame) -> pd.Series:
    """low / favourable / na (no context measure) per school."""
    return pd.Series(np.select([f[context_col(f)].isna().to_numpy(),
                                f["low_context"].to_numpy(dtype=bool)], ["na", "low"],
                               "favourable"), index=f.index)
