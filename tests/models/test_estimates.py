"""The tidy estimates table: dtypes, <NA> instead of NaN, validation, parquet round trip."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from pandas.arrays import FloatingArray

from analysis.models import estimates


def rows():
    return [
        {"model": "gradient", "outcome": "quality_index", "year": 2024, "term": "slope",
         "estimate": 0.05, "std_error": 0.01, "ci_low": 0.03, "ci_high": 0.07, "n": 120},
        {"model": "gradient", "outcome": "quality_index", "year": 2024, "term": "r2",
         "estimate": 0.3, "reason": "no_standard_error", "n": 120},
    ]


def test_make_fills_defaults_orders_columns_and_sets_dtypes():
    df = estimates.make(rows())
    assert tuple(df.columns) == estimates.COLUMNS
    for col, dtype in estimates.DTYPES.items():
        assert str(df[col].dtype) == dtype, col
    assert df["subset"].tolist() == ["all", "all"]
    assert df["level"].tolist() == ["school", "school"]
    assert df["reason"].tolist() == ["", "no_standard_error"]
    assert df.loc[1, "std_error"] is pd.NA


def test_make_turns_non_finite_numbers_into_na_with_a_reason():
    df = estimates.make([
        {"model": "m", "term": "a", "estimate": float("nan")},
        {"model": "m", "term": "b", "estimate": 1.0, "std_error": np.inf},
        {"model": "m", "term": "c", "estimate": np.float64("nan"), "reason": "too_few_schools"},
        {"model": "m", "term": "d"},
    ])
    assert df["estimate"].isna().tolist() == [True, False, True, True]
    assert df.loc[1, "std_error"] is pd.NA
    assert df["reason"].tolist() == ["not_finite", "not_finite", "too_few_schools", "missing"]
    values = df[list(estimates.FLOAT_COLUMNS)].to_numpy(dtype="float64", na_value=0.0)
    assert np.isfinite(values).all()


def test_make_rejects_unknown_columns_and_rows_without_model_or_term():
    with pytest.raises(ValueError, match="unknown column"):
        estimates.make([{"model": "m", "term": "t", "slope": 1.0}])
    with pytest.raises(ValueError, match="'term' is required"):
        estimates.make([{"model": "m"}])
    with pytest.raises(TypeError, match="column 'estimate'"):
        estimates.make([{"model": "m", "term": "t", "estimate": "0.5"}])


def test_validate_rejects_nan_naming_the_column_and_the_row():
    df = estimates.make(rows())
    # pandas masks the NaN it computes, but a Float64 array can still hold an unmasked NaN
    # (built from values and a mask, or read from an Arrow double column)
    nan = FloatingArray(np.array([0.03, np.nan]), np.array([False, False]))
    assert not nan.isna()[1]
    df["ci_low"] = nan
    with pytest.raises(ValueError) as err:
        estimates.validate(df)
    message = str(err.value)
    assert "column 'ci_low'" in message and "row 1" in message and "term=r2" in message
    assert "NaN" in message or "nan" in message


def test_validate_rejects_infinity_bad_dtype_missing_column_duplicate_key():
    good = estimates.make(rows())
    inf = good.copy()
    inf["estimate"] = inf["estimate"] / pd.array([0.0, 1.0], dtype="Float64")
    with pytest.raises(ValueError, match="column 'estimate', row 0"):
        estimates.validate(inf)
    with pytest.raises(ValueError, match="column 'estimate' has dtype float64"):
        estimates.validate(good.astype({"estimate": "float64"}))
    with pytest.raises(ValueError, match="column 'year' has dtype"):
        estimates.validate(good.astype({"year": "float64"}))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['reason'\]"):
        estimates.validate(good.drop(columns="reason"))
    with pytest.raises(ValueError, match="duplicate key"):
        estimates.validate(pd.concat([good, good.iloc[[0]]], ignore_index=True))
    with pytest.raises(ValueError, match="duplicate key"):
        estimates.make([rows()[0], rows()[0]])


def test_validate_requires_a_reason_for_a_missing_estimate():
    df = estimates.make(rows())
    df.loc[0, "estimate"] = pd.NA
    with pytest.raises(ValueError, match="column 'reason', row 0"):
        estimates.validate(df)


def test_parquet_round_trip_keeps_dtypes_and_na(tmp_path):
    df = estimates.make([*rows(), {"model": "trend", "term": "slope_trend_per_year",
                                   "estimate": None, "reason": "too_few_years"}])
    path = tmp_path / "estimates.parquet"
    df.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    estimates.validate(back)
    pd.testing.assert_frame_equal(back, df)
    assert back.loc[2, "year"] is pd.NA and back.loc[2, "estimate"] is pd.NA


def test_empty_is_valid_and_concat_sorts_by_key_whatever_the_order():
    estimates.validate(estimates.empty())
    a = estimates.make(rows())
    b = estimates.make([{"model": "expected", "outcome": "quality_index", "year": 2023,
                         "term": "r2", "estimate": 0.4, "reason": "no_standard_error"},
                        {"model": "expected", "term": "r2", "estimate": 0.5,
                         "reason": "no_standard_error"}])
    one, two = estimates.concat([a, b]), estimates.concat([b, estimates.empty(), a])
    pd.testing.assert_frame_equal(one, two)
    assert one["model"].tolist() == ["expected", "expected", "gradient", "gradient"]
    assert one["year"].isna().tolist() == [True, False, False, False]
    assert one["term"].tolist()[2:] == ["r2", "slope"]
    with pytest.raises(ValueError, match="duplicate key"):
        estimates.concat([a, a])


def test_from_statsmodels_copies_params_bse_and_conf_int():
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = 1 + 2 * x + rng.normal(size=30)
    res = sm.WLS(y, sm.add_constant(pd.DataFrame({"x": x})), weights=np.ones(30)).fit(
        cov_type="HC1")
    df = estimates.from_statsmodels(res, model="m", outcome="y", year=2024, subset="all", n=30)
    assert df["term"].tolist() == ["coef:const", "coef:x"]
    ci = res.conf_int()
    np.testing.assert_allclose(df["estimate"].to_numpy(dtype=float), res.params)
    np.testing.assert_allclose(df["std_error"].to_numpy(dtype=float), res.bse)
    np.testing.assert_allclose(df["ci_low"].to_numpy(dtype=float), ci[0])
    np.testing.assert_allclose(df["ci_high"].to_numpy(dtype=float), ci[1])
    assert df["n"].tolist() == [30, 30] and df["level"].tolist() == ["school", "school"]
    renamed = estimates.from_statsmodels(res, model="m", outcome="y", year=None, subset="all",
                                         n=30, names={"const": "intercept"})
    assert renamed["term"].tolist() == ["coef:intercept", "coef:x"]
    arr = sm.OLS(y, sm.add_constant(x)).fit()
    named = estimates.from_statsmodels(arr, model="m", outcome="y", year=None, subset="all",
                                       n=30, names=["a", "b"])
    assert named["term"].tolist() == ["coef:a", "coef:b"]


def test_lookup_returns_one_row_as_plain_dict_or_none():
    df = estimates.concat([estimates.make(rows()), estimates.make(
        [{**rows()[0], "year": 2023, "estimate": 0.04}])])
    hit = estimates.lookup(df, "gradient", "slope", year=2024)
    assert hit is not None and hit["estimate"] == 0.05 and hit["n"] == 120
    assert isinstance(hit["year"], int) and isinstance(hit["estimate"], float)
    r2 = estimates.lookup(df, "gradient", "r2", outcome="quality_index")
    assert r2 is not None and r2["std_error"] is None and r2["reason"] == "no_standard_error"
    assert estimates.lookup(df, "gradient", "curvature") is None
    with pytest.raises(ValueError, match="2 rows match"):
        estimates.lookup(df, "gradient", "slope")
