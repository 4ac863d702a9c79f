"""An analyst's export of a region: Russian headers, percent shares, and the mapping file
that reads it (used by the ingest tests and the ``make report DATA=`` tests)."""

from __future__ import annotations

import pandas as pd

RU_SCHOOLS = {
    "year": "Год", "school_id": "Код ОО", "school_name": "Наименование ОО",
    "municipality": "МО", "settlement_type": "Тип местности", "school_type": "Вид ОО",
    "enrollment": "Численность обучающихся",
    "share_parents_higher_ed": "Родители с высшим образованием, %",
    "share_low_income": "Доля детей из малоимущих семей, %",
}
RU_RESULTS = {"year": "Год", "school_id": "Код ОО", "procedure": "Процедура",
              "subject": "Предмет", "grade": "Класс", "participants": "Участников",
              "n_mark2": "«2»", "n_mark3": "«3»", "n_mark4": "«4»", "n_mark5": "«5»",
              "n_below_min": "Ниже минимума", "mean_score": "Средний балл"}
PERCENT = ("share_parents_higher_ed", "share_low_income")


def mapping_yaml() -> str:
    lines = ["schools:"] + [f'  {k}: "{v}"' for k, v in RU_SCHOOLS.items()]
    lines += ["results:"] + [f'  {k}: "{v}"' for k, v in RU_RESULTS.items()]
    lines += ["units:"] + [f"  {k}: percent" for k in PERCENT]
    return "\n".join(lines) + "\n"


def export(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    out = df[list(names)].copy()
    for col in PERCENT:
        if col in out:
            out[col] = (out[col] * 100).round(2)
    return out.rename(columns=names)
