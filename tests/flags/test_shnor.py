"""ШНОР: the federal rule as written, the beta-binomial prior, posteriors and P(rule)."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.errors import ModelError
from analysis.flags import shnor as S
from analysis.ingest import prepare
from helpers.fixtures import result_row, results_table, schools_table

ALL = ["VPR", "OGE", "EGE"]
LOW = (3, 7, 0, 0)       # exactly 30% «2»: low
ALMOST = (29, 71, 0, 0)  # 29%: not low
FINE = (0, 5, 5, 0)


def tidy(rows):
    return prepare.tidy_results(results_table(rows))


def context_for(ids, years=(2024, 2025), social_index=0.0):
    return pd.DataFrame([{"year": y, "school_id": s, "social_index": social_index,
                          "settlement_type": "city", "school_type": "secondary"}
                         for y in years for s in ids])


# ------------------------------------------------------------------------ the rule


@pytest.fixture
def rule_case():
    rows = [
        # A: two low procedures in 2025 -> criterion 1
        result_row(2025, "A", subject="math", marks=LOW),
        result_row(2025, "A", subject="rus", marks=LOW),
        # B: one low in 2025 and one in 2024 -> criterion 2
        result_row(2025, "B", marks=LOW),
        result_row(2024, "B", procedure="OGE", grade=9, marks=LOW),
        # C: one low in 2025 only -> not listed
        result_row(2025, "C", marks=LOW), result_row(2025, "C", subject="rus", marks=FINE),
        result_row(2024, "C", marks=FINE),
        # D: 29% twice -> not low
        result_row(2025, "D", marks=ALMOST), result_row(2025, "D", subject="rus", marks=ALMOST),
        # E: ЕГЭ 3 of 9 below the minimum plus ВПР low -> criterion 1
        result_row(2025, "E", procedure="EGE", subject="rus", grade=11, below=(3, 9)),
        result_row(2025, "E", marks=LOW),
        # F: low twice in 2024 only -> not listed
        result_row(2024, "F", marks=LOW), result_row(2024, "F", subject="rus", marks=LOW),
        result_row(2025, "F", marks=FINE),
        # G: new in 2025, one low -> criterion 2 cannot hold
        result_row(2025, "G", marks=LOW),
        # K: new in 2025, two low -> criterion 1 still holds
        result_row(2025, "K", marks=LOW), result_row(2025, "K", subject="rus", marks=LOW),
        # I: one low plus a procedure with no participants (ignored) -> not listed
        result_row(2025, "I", marks=LOW), result_row(2025, "I", subject="rus", marks=(0, 0, 0, 0)),
    ]
    ids = "ABCDEFGKI"
    schools = schools_table([{"year": 2025, "school_id": s} for s in ids]
                            + [{"year": 2024, "school_id": s} for s in "ABCDEF"])
    return tidy(rows), schools


def test_rule_each_branch(rule_case):
    results, schools = rule_case
    got = S.shnor(results, schools, 2025, threshold=0.30, procedures=ALL).set_index("school_id")
    assert got["shnor"].to_dict() == {"A": True, "B": True, "C": False, "D": False, "E": True,
                                      "F": False, "G": False, "I": False, "K": True}
    assert got.loc["A", "criterion_1"] and not got.loc["A", "criterion_2"]
    assert got.loc["B", "criterion_2"] and not got.loc["B", "criterion_1"]
    assert got.loc["K", "criterion_1"] and got.loc["K", "n_low_prev"] == 0
    assert (got.loc["G", "n_low_year"], got.loc["G", "n_low_prev"]) == (1, 0)
    assert got.loc["I", "n_low_year"] == 1          # the empty procedure does not count
    assert (got.loc["F", "n_low_prev"], got.loc["F", "n_low_year"]) == (2, 0)


def test_exactly_30_percent_counts_and_29_does_not():
    rows = [result_row(2025, "X", marks=(30, 70, 0, 0)),
            result_row(2025, "X", subject="rus", marks=(3, 7, 0, 0)),
            result_row(2025, "Y", marks=(299, 701, 0, 0)),
            result_row(2025, "Y", subject="rus", marks=(30, 70, 0, 0)),
            result_row(2025, "Z", procedure="EGE", subject="rus", grade=11, below=(3, 10)),
            result_row(2025, "Z", procedure="OGE", grade=9, below=(6, 20))]
    low = S.low_procedures(tidy(rows), [2025], threshold=0.3, procedures=ALL)
    assert sorted(zip(low["school_id"], low["subject"])) == [
        ("X", "math"), ("X", "rus"), ("Y", "rus"), ("Z", "math"), ("Z", "rus")]
    schools = schools_table([{"year": 2025, "school_id": s} for s in "XYZ"])
    got = S.shnor(tidy(rows), schools, 2025, threshold=0.3, procedures=ALL)
    assert got.set_index("school_id")["shnor"].to_dict() == {"X": True, "Y": False, "Z": True}


def test_parameters_change_the_list(rule_case):
    results, schools = rule_case

    def listed(**kw):
        return set(S.shnor(results, schools, 2025, **kw).query("shnor")["school_id"])

    assert listed(threshold=0.3, procedures=ALL) == {"A", "B", "E", "K"}
    assert listed(threshold=0.3, procedures=["VPR", "OGE"]) == {"A", "B", "K"}   # E: no ЕГЭ
    assert listed(threshold=0.3, procedures=["VPR"]) == {"A", "K"}               # B: no ОГЭ
    assert "D" in listed(threshold=0.25, procedures=ALL)
    assert listed(threshold=0.31, procedures=ALL) == set()  # only E's ЕГЭ 3/9 stays low
    assert listed(threshold=0.3, procedures=ALL, min_participants=11) == set()


def test_details_list_the_low_procedures(rule_case):
    results, schools = rule_case
    table = S.shnor(results, schools, 2025, threshold=0.3, procedures=ALL)
    det = S.shnor_details(results, table, 2025, threshold=0.3, procedures=ALL)
    assert sorted(det["school_id"].unique()) == ["A", "B", "E", "K"]
    assert det.query("school_id == 'B'")["year"].tolist() == [2024, 2025]
    assert list(det.columns) == ["year", "school_id", "procedure", "subject", "grade",
                                 "participants", "n_low", "share_low"]


def test_probabilistic_table_keeps_the_exact_rule(rule_case):
    results, schools = rule_case
    ctx = context_for("ABCDEFGKI")
    for kw in ({"threshold": 0.3, "procedures": ALL},
               {"threshold": 0.25, "procedures": ["VPR", "OGE"]},
               {"threshold": 0.3, "procedures": ALL, "min_participants": 11}):
        exact = S.shnor(results, schools, 2025, **kw)
        procs, sch = S.shnor_probabilistic(results, ctx, 2025, **kw)
        merged = exact.merge(sch, on="school_id", suffixes=("", "_p"))
        assert len(merged) == len(exact) == len(sch)
        for c in ("shnor", "n_low_year", "n_low_prev"):
            assert (merged[c] == merged[f"{c}_p"]).all(), c
    procs, sch = S.shnor_probabilistic(results, ctx, 2025, threshold=0.3, procedures=ALL)
    assert not ((procs["school_id"] == "I") & (procs["subject"] == "rus")).any()  # 0 pupils
    assert set(procs["prior"]) == {"pooled"}  # too few rows to fit
    assert not procs.isna().any().any() and not sch.isna().any().any()


# ---------------------------------------------------------------- beta-binomial prior


def simulate(m=3000, coef=(-1.5, 0.5), rho=0.08, seed=1):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"Intercept": 1.0, "x": rng.normal(size=m)})
    n = rng.integers(10, 60, size=m)
    mu = 1.0 / (1.0 + np.exp(-(X.to_numpy() @ np.array(coef))))
    s = (1.0 - rho) / rho
    k = rng.binomial(n, rng.beta(mu * s, (1.0 - mu) * s))
    return k, n, X


def test_loglik_is_scipy_betabinom_and_parameters_are_recovered():
    k, n, X = simulate()
    fit = S.fit_beta_binomial(k, n, X)
    a, b = fit.prior(X)
    assert fit.loglik == pytest.approx(stats.betabinom.logpmf(k, n, a, b).sum(), rel=1e-10)
    assert fit.converged and fit.n_obs == 3000 and 0 < fit.rho < 1
    assert list(fit.coef.index) == ["Intercept", "x"]
    assert fit.coef["Intercept"] == pytest.approx(-1.5, abs=0.08)
    assert fit.coef["x"] == pytest.approx(0.5, abs=0.05)
    assert fit.rho == pytest.approx(0.08, abs=0.015)
    # a maximum: the likelihood is lower a step away in each parameter
    theta = np.append(fit.coef.to_numpy(), np.log(fit.rho / (1 - fit.rho)))
    for j in range(3):
        for h in (-1e-3, 1e-3):
            step = theta.copy()
            step[j] += h
            assert S.beta_binomial_loglik(step, k, n, X)[0] < fit.loglik


def test_rows_without_participants_are_ignored():
    k, n, X = simulate(m=400, seed=3)
    fit = S.fit_beta_binomial(k, n, X)
    k2 = np.append(k, [0, 0])
    n2 = np.append(n, [0, 0])
    X2 = pd.concat([X, pd.DataFrame({"Intercept": [1.0, 1.0], "x": [9.0, -9.0]})],
                   ignore_index=True)
    fit2 = S.fit_beta_binomial(k2, n2, X2)
    assert fit2.n_obs == 400 and fit2.loglik == pytest.approx(fit.loglik, rel=1e-9)
    assert np.allclose(fit2.coef, fit.coef, atol=1e-4)


def test_gradient_matches_finite_differences():
    k, n, X = simulate(m=200, seed=2)
    theta = np.array([-1.2, 0.3, np.log(0.1 / 0.9)])
    _, grad = S.beta_binomial_loglik(theta, k, n, X)
    h = 1e-6
    num = np.array([(S.beta_binomial_loglik(theta + h * e, k, n, X)[0]
                     - S.beta_binomial_loglik(theta - h * e, k, n, X)[0]) / (2 * h)
                    for e in np.eye(3)])
    assert np.allclose(grad, num, rtol=1e-5, atol=1e-5)


def test_non_convergence_is_a_model_error():
    k, n, X = simulate(m=500, seed=4)
    X = X.assign(x=X["x"] * 100.0)  # a start far from the optimum in few iterations
    with pytest.raises(ModelError, match="did not converge"):
        S.fit_beta_binomial(k, n, X, max_iter=1)


def test_design_cells_context_and_rank():
    rows = pd.DataFrame({"year": [2024, 2025, 2025, 2025, 2025, 2024],
                         "school_id": ["a", "a", "b", "c", "d", "e"],
                         "subject": "math", "grade": 5})
    ctx = pd.DataFrame({"year": [2024, 2025, 2025, 2025, 2025],  # no 2024 row for e
                        "school_id": ["a", "a", "b", "c", "d"],
                        "social_index": [0.5, 0.5, np.nan, -1.0, 1.0],
                        "settlement_type": ["city", "city", "rural", "rural", "city"],
                        "school_type": "secondary"})                      # constant: dropped
    X = S.shnor_design(rows, ctx)
    assert list(X.columns) == ["cell:math|5|2024", "cell:math|5|2025", "social_index",
                               "social_index_missing", "settlement_type:city",
                               "settlement_type:rural"]  # e has no context: "(missing)"
    assert X["social_index"].tolist() == [0.5, 0.5, 0.0, -1.0, 1.0, 0.0]
    assert X["social_index_missing"].tolist() == [0, 0, 1, 0, 0, 1]
    assert np.linalg.matrix_rank(X.to_numpy()) == X.shape[1]


# ------------------------------------------------------------------------ posteriors


def test_posterior_low_by_hand():
    assert S.posterior_low(3, 10, 1.0, 1.0, 0.3) == pytest.approx(
        stats.beta.sf(0.3, 4, 8), rel=1e-12)
    # k = n = 1 under a uniform prior: Beta(2, 1), P(p >= t) = 1 − t²
    assert S.posterior_low(1, 1, 1.0, 1.0, 0.3) == pytest.approx(1 - 0.09)
    # k = 0 of 1: Beta(1, 2), P(p >= t) = (1 − t)²
    assert S.posterior_low(0, 1, 1.0, 1.0, 0.5) == pytest.approx(0.25)
    got = S.posterior_low(np.array([0, 5, 60]), np.array([4, 10, 100]), np.array([2.0, 1, 3]),
                          np.array([5.0, 1, 7]), 0.3)
    assert np.allclose(got, stats.beta.sf(0.3, [2, 6, 63], [9, 6, 47]), rtol=1e-10)


def brute_force(p_year, p_prev):
    total = 0.0
    m = len(p_year) + len(p_prev)
    p = np.array([*p_year, *p_prev])
    for outcome in itertools.product([0, 1], repeat=m):
        o = np.array(outcome)
        c_y, c_prev = o[:len(p_year)].sum(), o[len(p_year):].sum()
        if c_y >= 2 or (c_y >= 1 and c_prev >= 1):
            total += np.prod(np.where(o == 1, p, 1 - p))
    return total


def test_rule_probability_equals_enumeration():
    cases = {"a": ([0.3, 0.8], [0.5, 0.1]), "b": ([0.7, 0.2, 0.9], [0.4]),
             "c": ([0.6], [0.2, 0.9, 0.5]), "d": ([0.95], []), "e": ([], [0.99, 0.99]),
             "f": ([1.0, 0.0], [1.0]), "g": ([0.25, 0.5, 0.75, 0.9], [])}
    rows = [{"school_id": s, "year": y, "p_low": p}
            for s, (py, pp) in cases.items() for y, ps in ((2025, py), (2024, pp)) for p in ps]
    got = S.rule_probability(pd.DataFrame(rows), 2025)
    for s, (py, pp) in cases.items():
        assert got[s] == pytest.approx(brute_force(py, pp), abs=1e-9), s
    assert got["f"] == pytest.approx(1.0) and got["e"] == 0.0


# ------------------------------------------------------------ the probabilistic list


@pytest.fixture
def region():
    """40 ordinary schools (10% «2», share rising as the social index falls) plus:
    few (listed by 2/4 and 2/5), big (60 of 100 twice), edge (12 of 40 twice, exactly 30%),
    quiet (in the context of 2025 only, no results)."""
    rng = np.random.default_rng(7)
    rows, ctx = [], []
    for i in range(40):
        sid = f"s{i:02d}"
        si = float(rng.normal())
        for y in (2024, 2025):
            ctx.append({"year": y, "school_id": sid, "social_index": si if i % 9 else np.nan,
                        "settlement_type": ["city", "rural"][i % 2],
                        "school_type": "secondary"})
            for subj in ("math", "rus"):
                n = int(rng.integers(20, 60))
                k = int(rng.binomial(n, 1 / (1 + np.exp(2.2 + 0.6 * si))))
                rows.append(result_row(y, sid, subject=subj, marks=(k, n - k, 0, 0)))
            n = int(rng.integers(5, 30))
            rows.append(result_row(y, sid, procedure="EGE", subject="rus", grade=11,
                                   below=(int(rng.binomial(n, 0.05)), n)))
    special = {"few": [(2, 2, 0, 0), (2, 3, 0, 0)], "big": [(60, 40, 0, 0)] * 2,
               "edge": [(12, 28, 0, 0)] * 2}
    for sid, marks in special.items():
        for subj, m in zip(("math", "rus"), marks):
            rows.append(result_row(2025, sid, subject=subj, marks=m))
        rows.append(result_row(2024, sid, subject="math", marks=(1, 20, 0, 0)))
        for y in (2024, 2025):
            ctx.append({"year": y, "school_id": sid, "social_index": 0.0,
                        "settlement_type": "city", "school_type": "secondary"})
    ctx.append({"year": 2025, "school_id": "quiet", "social_index": 1.0,
                "settlement_type": "city", "school_type": "lyceum"})
    return tidy(rows), pd.DataFrame(ctx)


def test_labels_few_participants_reliable_borderline(region):
    results, ctx = region
    procs, sch = S.shnor_probabilistic(results, ctx, 2025, threshold=0.3, procedures=ALL,
                                       min_n=10, sure=0.9)
    got = sch.set_index("school_id")
    assert got.loc["few", "label"] == "few_participants" and got.loc["few", "n_low_small"] == 2
    assert got.loc["big", "label"] == "reliable" and got.loc["big", "p_rule"] > 0.99
    assert got.loc["edge", "label"] == "borderline" and got.loc["edge", "p_rule"] < 0.5
    assert got.loc["edge", "n_low_small"] == 0
    assert (got.loc[~got["shnor"], "label"] == "").all()
    assert got.loc["quiet", "p_rule"] == 0.0 and got.loc["quiet", "max_p_low"] == 0.0
    assert not got.loc["quiet", "shnor"]
    mx = procs.query("year == 2025").groupby("school_id")["p_low"].max()
    assert np.allclose(got.loc[mx.index, "max_p_low"], mx)


def test_procedure_table(region):
    results, ctx = region
    procs, sch = S.shnor_probabilistic(results, ctx, 2025, threshold=0.3, procedures=ALL)
    assert list(procs.columns) == list(S.PROC_COLUMNS)
    assert list(sch.columns) == ["school_id", "shnor", "n_low_year", "n_low_prev", "p_rule",
                                 "max_p_low", "n_low_small", "label"]
    keys = procs[["school_id", "year", "procedure", "subject", "grade"]]
    assert keys.equals(keys.sort_values(list(keys.columns)))
    assert not procs.isna().any().any() and not sch.isna().any().any()
    assert procs["p_low"].between(0, 1).all() and sch["p_rule"].between(0, 1).all()
    assert (procs.loc[procs["procedure"] == "VPR", "prior"] == "fitted").all()
    assert (procs.loc[procs["procedure"] == "EGE", "prior"] == "fitted").all()
    # the prior of «2» is higher where the social index is lower ("similar schools")
    vpr = procs.query("procedure == 'VPR' and school_id.str.startswith('s')")
    si = vpr.merge(ctx, on=["year", "school_id"])
    si = si.loc[si["social_index"].notna()]
    assert np.corrcoef(si["social_index"], si["prior_mean"])[0, 1] < -0.9
    # the p_rule of each school is the enumeration over its procedures
    for sid in ("big", "edge", "few", "s03"):
        p = procs.loc[procs["school_id"] == sid]
        want = brute_force(p.loc[p["year"] == 2025, "p_low"].tolist(),
                           p.loc[p["year"] == 2024, "p_low"].tolist())
        assert sch.set_index("school_id").loc[sid, "p_rule"] == pytest.approx(want, abs=1e-9)


def test_pooled_prior_for_a_small_procedure(region):
    results, ctx = region
    extra = tidy([result_row(2025, "s01", procedure="OGE", grade=9, marks=(4, 6, 0, 0)),
                  result_row(2025, "s02", procedure="OGE", grade=9, marks=(1, 9, 0, 0))])
    both = pd.concat([results, extra], ignore_index=True)
    procs, _ = S.shnor_probabilistic(both, ctx, 2025, threshold=0.3, procedures=ALL)
    oge = procs.query("procedure == 'OGE'")
    assert (oge["prior"] == "pooled").all()
    assert np.allclose(oge["prior_mean"], 5 / 20)
    # rho = 0.1 -> alpha + beta = 9
    assert oge["p_low"].to_numpy() == pytest.approx(
        stats.beta.sf(0.3, 0.25 * 9 + np.array([4, 1]), 0.75 * 9 + np.array([6, 9])))


def test_min_participants_drops_rows_from_both_tables(region):
    results, ctx = region
    procs, sch = S.shnor_probabilistic(results, ctx, 2025, threshold=0.3, procedures=ALL,
                                       min_participants=10)
    assert (procs["participants"] >= 10).all()
    assert not sch.set_index("school_id").loc["few", "shnor"]
