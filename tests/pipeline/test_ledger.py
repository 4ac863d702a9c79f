"""The exclusions ledger balances: in scope = used + excluded."""

import pandas as pd

from analysis import ledger


def test_record_lists_excluded_rows_and_balances_per_year():
    scope = pd.DataFrame({"year": [2024, 2025, 2025, 2025], "school_id": list("abcd"),
                          "source_file": "s.csv", "source_row": [2, 3, 4, 5]})
    reason = pd.Series([None, "below_min_n", None, "no_social_index"])
    led, acc = ledger.record(scope, reason.notna(), analysis="ses_link", table="schools",
                             reason=reason)
    assert led[["school_id", "source_row", "reason"]].values.tolist() == [
        ["b", 3, "below_min_n"], ["d", 5, "no_social_index"]]
    assert list(led.columns) == list(ledger.LEDGER_COLUMNS)
    assert acc[["year", "in_scope", "used", "excluded"]].values.tolist() == [[2024, 1, 1, 0],
                                                                              [2025, 3, 1, 2]]


def test_combine_keeps_columns_when_nothing_is_excluded():
    scope = pd.DataFrame({"year": [2025], "school_id": ["a"]})
    part = ledger.record(scope, pd.Series([False]), analysis="x", table="schools", reason="r")
    led, acc = ledger.combine([part, part])
    assert led.empty and list(led.columns) == list(ledger.LEDGER_COLUMNS)
    assert acc["used"].tolist() == [1, 1]
