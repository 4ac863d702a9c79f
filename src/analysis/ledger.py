"""The exclusions ledger: every input row is analysed or listed here with its reason.

Each analysis declares its *scope* (the input rows it considers), uses some of them and
excludes the rest, each with a reason code from the catalogue (``labels.yaml``,
``reason.*``).  Two tables record this:

- the **ledger** -- one row per excluded input row and analysis
  (:data:`LEDGER_COLUMNS`);
- the **accounting** -- per analysis, table and year: rows in scope, used and excluded
  (:data:`ACCOUNTING_COLUMNS`), with ``in_scope == used + excluded`` by construction and
  checked by the tests.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

LEDGER_COLUMNS = (
    "analysis", "table", "year", "school_id", "procedure", "subject", "grade",
    "source_file", "source_row", "reason",
)
ACCOUNTING_COLUMNS = ("analysis", "table", "year", "in_scope", "used", "excluded")


def empty_ledger() -> pd.DataFrame:
    """A ledger with no rows and the standard columns."""
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in LEDGER_COLUMNS})


def _dtype(column: str) -> str:
    return {"year": "Int64", "grade": "Int64", "source_row": "Int64"}.get(column, "string")


def record(scope: pd.DataFrame, excluded: pd.Series, *, analysis: str, table: str,
           reason: str | pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ledger rows and accounting for one analysis over one scope.

    Parameters
    ----------
    scope : DataFrame, shape (n_rows, ...)
        The input rows the analysis considers (must carry ``year`` and ``school_id``).
    excluded : bool Series, shape (n_rows,)
        True for rows the analysis does not use.
    analysis, table : str
        Names for the ledger (analysis code, and ``schools`` or ``results``).
    reason : str or Series of str
        Reason code(s) (``labels.yaml`` ``reason.<code>``), one per excluded row.

    Returns
    -------
    ledger, accounting : DataFrame
    """
    excluded = excluded.reindex(scope.index).fillna(False).astype(bool)
    rows = scope.loc[excluded]
    ledger = pd.DataFrame(index=rows.index)
    for col in LEDGER_COLUMNS:
        if col == "analysis":
            ledger[col] = analysis
        elif col == "table":
            ledger[col] = table
        elif col == "reason":
            ledger[col] = reason if isinstance(reason, str) else reason.loc[rows.index]
        else:
            ledger[col] = rows[col] if col in rows.columns else pd.NA
    ledger = ledger.astype({c: _dtype(c) for c in LEDGER_COLUMNS}).reset_index(drop=True)
    years = scope["year"].astype("Int64")
    acc = (
        pd.DataFrame({"year": years, "excluded": excluded.astype(int)})
        .groupby("year", sort=True)
        .agg(in_scope=("excluded", "size"), excluded=("excluded", "sum"))
        .reset_index()
    )
    acc["used"] = acc["in_scope"] - acc["excluded"]
    acc.insert(0, "table", table)
    acc.insert(0, "analysis", analysis)
    return ledger, acc[list(ACCOUNTING_COLUMNS)].astype({"year": "Int64"})


def combine(parts: Iterable[tuple[pd.DataFrame, pd.DataFrame]]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate (ledger, accounting) pairs into one ledger and one accounting table."""
    parts = list(parts)
    ledgers = [p[0] for p in parts if len(p[0])]
    ledger = pd.concat(ledgers, ignore_index=True) if ledgers else empty_ledger()
    accounting = pd.concat([p[1] for p in parts], ignore_index=True)
    return ledger, accounting
