"""Where the schools are: regions, municipalities, schools, their codes and names.

The first draws of the region, in a fixed order: the municipalities (kind, status, size
weight; with several regions then the region sizes and names), their names, then the schools
of each municipality (code, settlement and school type, grade 11, latent status, enrolment,
the school that closes and the one that opens, names).  The word lists that names are drawn
from are here too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.demo.synth.params import (
    GRADE11_TYPES,
    MIN_MUNICIPALITIES_PER_REGION,
    PARAMS,
    SCHOOL_DIGITS,
    SETTLEMENT_MIX,
    SPECIAL_NAME,
    TYPE_MIX,
)
from analysis.demo.synth.spec import RegionSpec, _legacy_codes, _municipality_digits
from analysis.ingest import schema

# --- names ------------------------------------------------------------------------------------
DISTRICT_STEMS = (
    "Берёзовский", "Каменский", "Сосновский", "Ключевский", "Озёрский", "Камышловский",
    "Артёмовский", "Белоярский", "Ирбитский", "Талицкий", "Тугулымский", "Пышминский",
    "Богдановичский", "Алапаевский", "Режевской", "Невьянский", "Кушвинский", "Тавдинский",
    "Туринский", "Слободской", "Байкаловский", "Шалинский", "Нижнесергинский", "Ачитский",
    "Красноуфимский", "Артинский", "Сысертский", "Полевской", "Ревдинский", "Кировградский",
    "Верхотурский", "Гаринский", "Махнёвский", "Таборинский", "Серовский", "Ивдельский",
    "Берёзовоярский", "Ольховский", "Липовский", "Рябиновский",
)
CITY_NAMES = (
    "Заречный", "Лесной", "Нагорный", "Светлый", "Солнечный", "Первомайский", "Октябрьский",
    "Южный", "Северный", "Рассветный", "Радужный", "Сосновоборск",
)
NAME_PREFIXES = ("Верхне", "Нижне", "Ново")
VILLAGES = (
    "Ключи", "Сосновка", "Берёзовка", "Каменка", "Покровское", "Никольское", "Петровка",
    "Ивановка", "Михайловка", "Знаменское", "Успенка", "Троицкое", "Вознесенка", "Горки",
    "Луговое", "Ольховка", "Рябиновка", "Черёмухово", "Малиновка", "Заозёрье", "Подгорное",
    "Красная Поляна", "Большие Брусяны", "Малая Кочёвка", "Кирга", "Шата", "Ялунино", "Озерки",
    "Липовка", "Кедровое", "Травянское", "Белоносова", "Колчедан", "Позариха", "Щелкун",
    "Бродово", "Мостовское", "Слобода", "Калиновка", "Зайково",
)
VILLAGE_ADJECTIVES = (
    "Сосновская", "Берёзовская", "Ключевская", "Каменская", "Покровская", "Никольская",
    "Петровская", "Ивановская", "Михайловская", "Знаменская", "Успенская", "Троицкая",
    "Горкинская", "Луговская", "Ольховская", "Рябиновская", "Черёмуховская", "Малиновская",
    "Заозёрская", "Подгорновская", "Кедровская", "Липовская", "Озерковская", "Шатинская",
    "Киргинская", "Колчеданская", "Слободская", "Калиновская", "Зайковская", "Бродовская",
)
#: Masculine adjectives of invented regions: «X край», «X автономный округ», and in the
#: feminine «X-ая область».
REGION_STEMS = (
    "Северский", "Приозёрский", "Заречный", "Лесогорский", "Нагорный", "Прибрежный",
    "Верхнеобский", "Ангарский", "Белогорский", "Светлогорский", "Краснореченский",
    "Сосногорский", "Каменногорский", "Среднеуральский", "Южноуральский", "Приволжский",
    "Прикамский", "Донской", "Окский", "Волховский", "Онежский", "Ладожский", "Вычегодский",
    "Печорский", "Мезенский", "Сухонский", "Ветлужский", "Сурский", "Мокшанский", "Цнинский",
    "Хопёрский", "Медведицкий", "Сальский", "Манычский", "Терский", "Сунженский", "Кумский",
    "Иртышский", "Ишимский", "Кондинский", "Чулымский", "Кетский", "Катунский", "Бердский",
    "Енисейский", "Канский", "Витимский", "Олёкминский", "Алданский", "Зейский", "Бурейский",
    "Селемджинский", "Уссурийский", "Шилкинский", "Аргунский", "Ононский", "Селенгинский",
    "Баргузинский", "Тункинский", "Саянский", "Абаканский", "Хемчикский", "Колымский",
    "Индигирский", "Анадырский", "Охотский", "Тауйский", "Пенжинский", "Вилюйский",
    "Ленский", "Тымский", "Васюганский", "Пуровский", "Тазовский", "Надымский", "Усинский",
    "Ижемский", "Вишерский", "Чусовской", "Сылвенский",
)
#: Names of invented republics («Республика X»).
REPUBLIC_NAMES = (
    "Северия", "Полесье", "Заречье", "Приуралье", "Подгорье", "Поморье", "Ставрия", "Задонье",
    "Прибайкалье", "Заволжье", "Приобье", "Беломорье", "Поволжье", "Забайкалье", "Присаянье",
    "Предгорье", "Заонежье", "Поречье", "Ополье", "Приладожье", "Притоболье", "Закамье",
    "Семиречье", "Залесье", "Приамурье", "Понизовье",
)
#: Shares of republics, krais and autonomous okrugs among the regions (the rest: oblasts).
REGION_KIND_SHARES = {"republic": 0.26, "krai": 0.11, "okrug": 0.05}

NUMBERED_NAMES = {
    "basic": ("{form} ООШ № {n}",),
    "secondary": ("{form} СОШ № {n}", "{form} «СОШ № {n}»"),
    "advanced": ("{form} «СОШ с УИОП № {n}»",),
    "gymnasium": ("{form} «Гимназия № {n}»",),
    "lyceum": ("{form} «Лицей № {n}»",),
    "adapted": ("ГКОУ «Школа-интернат № {n}» (АООП)", "ГБОУ «Школа № {n}, реализующая АООП»"),
    "other": ("{form} «Центр образования № {n}»", "{form} «Кадетская школа № {n}»",
              "{form} «Школа-комплекс № {n}»"),
}


def _draw_categories(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of ``probs`` (n, k), by inverse CDF of one uniform."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return (rng.random(len(probs))[:, None] >= cdf[:, :-1]).sum(axis=1)


def _municipalities(spec: RegionSpec, rng: np.random.Generator) -> pd.DataFrame:
    """Municipalities in the order of their codes, one row each.

    Columns: ``code`` (1..n over all regions), ``region`` (0-based index), ``region_name``,
    ``in_region`` (number within the region, from 1), ``municipality`` (name, unique),
    ``urban``, ``m`` (status), ``weight`` (relative number of schools).  At least one urban
    and one rural municipality.

    With one region the draws are those of the original single-region generator; with
    several, the region sizes, the region names and the names of each region's
    municipalities are drawn after ``weight``.
    """
    n = spec.n_municipalities
    p = PARAMS["municipality"]
    n_urban = int(np.clip(round(p["share_urban"] * n), 1, n - 1))
    urban = np.zeros(n, dtype=bool)
    urban[rng.permutation(n)[:n_urban]] = True
    shift = np.where(urban, p["status_shift"]["urban"], p["status_shift"]["rural"])
    m = rng.normal(0.0, p["sd_status"], n) + shift
    weight = rng.lognormal(0.0, p["size_weight_sd_log"], n)
    weight *= np.where(urban, p["size_weight_urban"], 1.0)
    if spec.n_regions == 1:
        sizes = np.array([n])
        region_names = np.array([""], dtype=object)
        names = _municipality_names(urban, rng)
    else:
        cap = 10 ** _municipality_digits(spec) - 1
        sizes = _region_sizes(n, spec.n_regions, cap, rng)
        region_names = _region_names(spec.n_regions, rng)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        # one loop iteration per region: a few cheap draws each
        names = [name for r in range(spec.n_regions)
                 for name in _municipality_names(urban[starts[r]:starts[r + 1]], rng)]
    region = np.repeat(np.arange(len(sizes)), sizes)
    in_region = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes) + 1
    names = _unique_across_regions(np.asarray(names, dtype=object), region, region_names)
    return pd.DataFrame({"code": np.arange(1, n + 1), "region": region,
                         "region_name": region_names[region], "in_region": in_region,
                         "municipality": names, "urban": urban, "m": m, "weight": weight})


def _region_sizes(n: int, n_regions: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Municipalities per region: at least the minimum, at most ``cap``, summing to ``n``.

    The municipalities beyond the minimum are multinomial over lognormal region weights; a
    region over ``cap`` gives its excess to the regions with the most room (ties: the first).
    """
    low = MIN_MUNICIPALITIES_PER_REGION
    weight = rng.lognormal(0.0, 0.6, n_regions)
    sizes = low + rng.multinomial(n - low * n_regions, weight / weight.sum())
    excess = int(np.maximum(sizes - cap, 0).sum())
    sizes = np.minimum(sizes, cap)
    for r in np.argsort(cap - sizes, kind="stable")[::-1]:  # most room first
        if excess == 0:
            break
        take = min(cap - int(sizes[r]), excess)
        sizes[r] += take
        excess -= take
    return sizes


def _region_names(n_regions: int, rng: np.random.Generator) -> np.ndarray:
    """Unique Russian-style region names (object array), in a random order.

    About a quarter are republics («Республика X»), a tenth krais («X край»), a twentieth
    autonomous okrugs («X автономный округ») and the rest oblasts («X-ая область»).
    """
    shares = REGION_KIND_SHARES
    n_rep = min(round(shares["republic"] * n_regions), len(REPUBLIC_NAMES))
    n_krai = round(shares["krai"] * n_regions)
    n_okrug = round(shares["okrug"] * n_regions)
    n_oblast = n_regions - n_rep - n_krai - n_okrug
    stems = [str(s) for s in rng.permutation(REGION_STEMS)[: n_regions - n_rep]]
    republics = [f"Республика {x}" for x in rng.permutation(REPUBLIC_NAMES)[:n_rep]]
    oblasts = [f"{s[:-2]}ая область" for s in stems[:n_oblast]]
    krais = [f"{s} край" for s in stems[n_oblast:n_oblast + n_krai]]
    okrugs = [f"{s} автономный округ" for s in stems[n_oblast + n_krai:]]
    names = np.array(oblasts + republics + krais + okrugs, dtype=object)
    return names[rng.permutation(n_regions)]


def _municipality_names(urban: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique Russian-style names: «X городской округ», «Город X», «X муниципальный район».

    Urban municipalities are «Город X» with probability 0.3 while city names last; the others
    take the district stems in a random order, then their «Верхне-/Нижне-/Ново-» forms.  Past
    those (more than about 150 municipalities in a region) a stem comes again with «№ 2», ...
    """
    stems = np.array([str(s) for s in rng.permutation(DISTRICT_STEMS)]
                     + [p + s.lower() for p in NAME_PREFIXES for s in DISTRICT_STEMS
                        if not s.startswith(NAME_PREFIXES)], dtype=object)
    cities = np.array([str(c) for c in rng.permutation(CITY_NAMES)], dtype=object)
    as_city = rng.random(len(urban)) < 0.3
    city_slot = urban & as_city
    city_rank = np.cumsum(city_slot) - 1
    is_city = city_slot & (city_rank < len(cities))
    stem_rank = np.cumsum(~is_city) - 1
    kind = np.where(urban, " городской округ", " муниципальный район").astype(object)
    round_, within = np.divmod(stem_rank, len(stems))
    suffix = np.where(round_ > 0, " № " + (round_ + 1).astype(str).astype(object), "")
    names = np.where(is_city, "Город " + cities[np.minimum(city_rank, len(cities) - 1)],
                     stems[within] + kind + suffix.astype(object))
    return [str(x) for x in names]


def _unique_across_regions(names: np.ndarray, region: np.ndarray,
                           region_names: np.ndarray) -> np.ndarray:
    """Municipality names unique nationally: a name drawn in several regions gets its region
    in parentheses («Каменский муниципальный район (Северская область)»)."""
    if len(region_names) == 1:
        return names
    frame = pd.DataFrame({"name": names, "region": region})
    shared = frame.groupby("name", sort=False)["region"].transform("nunique").to_numpy() > 1
    out = names.copy()
    out[shared] = names[shared] + " (" + region_names[region[shared]] + ")"
    return out


def _school_ids(spec: RegionSpec, munis: pd.DataFrame, mi: np.ndarray,
                k: np.ndarray) -> np.ndarray:
    """School codes (object array of digit strings, see :mod:`analysis.demo.synth`)."""
    if _legacy_codes(spec):
        number = munis["code"].to_numpy()[mi].astype(np.int64) * 10**SCHOOL_DIGITS + k
        width = 2 + SCHOOL_DIGITS
    else:
        digits = _municipality_digits(spec)
        number = ((munis["region"].to_numpy()[mi].astype(np.int64) + 1)
                  * 10 ** (digits + SCHOOL_DIGITS)
                  + munis["in_region"].to_numpy()[mi].astype(np.int64) * 10**SCHOOL_DIGITS + k)
        width = 2 + digits + SCHOOL_DIGITS
    return np.strings.zfill(number.astype(str), width).astype(object)


def _schools(spec: RegionSpec, munis: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Static school attributes, one row per school, ordered by school_id.

    Columns: school_id, code, region, municipality, urban, settlement_type, school_type,
    grade11, s (latent social status), enroll_base, opened_year, closed_year, school_name.
    """
    n_min = PARAMS["municipality"]["min_schools"]
    extra = rng.multinomial(spec.n_schools - n_min * len(munis),
                            munis["weight"] / munis["weight"].sum())
    per_muni = n_min + extra
    if per_muni.max() >= 10**SCHOOL_DIGITS:
        raise ValueError(f"a municipality drew {per_muni.max()} schools, more than "
                         f"{SCHOOL_DIGITS}-digit school numbers allow; use more municipalities")
    mi = np.repeat(np.arange(len(munis)), per_muni)
    k = np.arange(len(mi)) - np.repeat(np.cumsum(per_muni) - per_muni, per_muni) + 1
    df = pd.DataFrame({
        "school_id": _school_ids(spec, munis, mi, k),
        "code": munis["code"].to_numpy()[mi],
        "region": munis["region_name"].to_numpy()[mi],
        "municipality": munis["municipality"].to_numpy()[mi],
        "urban": munis["urban"].to_numpy()[mi],
    })
    df["settlement_type"] = _settlements(df["urban"].to_numpy(), rng)
    df["school_type"] = _school_types(df["settlement_type"].to_numpy(), rng)
    other11 = rng.random(len(df)) < PARAMS["participation"]["share_other_with_grade11"]
    df["grade11"] = df["school_type"].isin(GRADE11_TYPES) | ((df["school_type"] == "other")
                                                             & other11)
    df["s"] = _school_status(df, munis["m"].to_numpy()[mi], rng)
    df["enroll_base"] = _enrollment_base(df, rng)
    df[["opened_year", "closed_year"]] = _open_close(df, spec.years, rng)
    df["school_name"] = _school_names(df, per_muni, rng)
    return df


def _settlements(urban: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SETTLEMENT_TYPES
    table = np.array([[SETTLEMENT_MIX[u][k] for k in kinds] for u in ("rural", "urban")])
    mix = table[np.asarray(urban, dtype=np.intp)]
    out = np.asarray(kinds, dtype=object)[_draw_categories(rng, mix)]
    return _ensure_present(out, kinds, mix, rng)


def _school_types(settlement: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SCHOOL_TYPES
    places = schema.SETTLEMENT_TYPES
    table = np.array([[TYPE_MIX[s][k] for k in kinds] for s in places])
    mix = table[pd.Index(places).get_indexer(settlement)]
    out = np.asarray(kinds, dtype=object)[_draw_categories(rng, mix)]
    return _ensure_present(out, kinds, mix, rng)


def _ensure_present(values: np.ndarray, kinds: Sequence[str], mix: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Make every category of ``kinds`` appear at least once.

    A missing category replaces the value of a random row that may take it (its probability
    in ``mix`` is positive) and that holds the currently most frequent category.
    """
    values = values.copy()
    for j, kind in enumerate(kinds):
        if (values == kind).any():
            continue
        allowed = mix[:, j] > 0
        kinds_here, counts = np.unique(values[allowed], return_counts=True)
        donor = kinds_here[np.argmax(counts)]
        rows = np.flatnonzero(allowed & (values == donor))
        values[rng.choice(rows)] = kind
    return values


def _school_status(df: pd.DataFrame, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = PARAMS["school_status"]
    return (m + df["settlement_type"].map(p["settlement_effect"]).to_numpy(dtype=float)
            + df["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
            + rng.normal(0.0, p["sd_school"], len(df)))


def _enrollment_base(df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    p = PARAMS["enrollment"]
    median = df["settlement_type"].map(p["median"]).to_numpy(dtype=float)
    sd = df["settlement_type"].map(p["sd_log"]).to_numpy(dtype=float)
    factor = df["school_type"].map(p["type_factor"]).to_numpy(dtype=float)
    return np.maximum(median * factor * np.exp(rng.normal(0.0, 1.0, len(df)) * sd),
                      p["minimum"])


def _open_close(df: pd.DataFrame, years: Sequence[int], rng: np.random.Generator) -> pd.DataFrame:
    """``opened_year``/``closed_year`` (Int64): one secondary school closes in the last year
    (absent in it), another opens in the second year (absent in the first)."""
    out = pd.DataFrame({"opened_year": pd.array([pd.NA] * len(df), dtype="Int64"),
                        "closed_year": pd.array([pd.NA] * len(df), dtype="Int64")})
    if len(years) < 2:
        return out
    closer, opener = rng.choice(np.flatnonzero(df["school_type"] == "secondary"), 2,
                                replace=False)
    out.loc[closer, "closed_year"] = years[-1]
    out.loc[opener, "opened_year"] = years[1]
    return out


def _school_names(df: pd.DataFrame, per_muni: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Russian-style names, unique within each municipality; exactly one contains ``&``.

    Village secondary schools are «МКОУ «СОШ с. X»» and village basic schools «МКОУ «X-ская
    ООШ»» while the municipality's village names last; the others are numbered («МБОУ СОШ
    № 12»; «МКОУ» in villages), with numbers drawn without replacement within the
    municipality.  The draws are made municipality by municipality (one loop iteration of a
    few cheap draws each, in the order of the original generator); the names are then built
    for all schools at once.
    """
    n, n_muni = len(df), len(per_muni)
    numbers = np.empty(n, dtype=np.int64)
    variant = np.empty(n, dtype=np.int64)
    form_draw = np.empty(n)
    village_order = np.empty((n_muni, len(VILLAGES)), dtype=np.intp)
    adjective_order = np.empty((n_muni, len(VILLAGE_ADJECTIVES)), dtype=np.intp)
    start = 0
    for j, size in enumerate(per_muni.tolist()):
        end = start + size
        numbers[start:end] = rng.permutation(np.arange(1, 3 * size + 10))[:size]
        village_order[j] = rng.permutation(len(VILLAGES))
        adjective_order[j] = rng.permutation(len(VILLAGE_ADJECTIVES))
        variant[start:end] = rng.integers(0, 6, size)
        form_draw[start:end] = rng.random(size)
        start = end
    mi = np.repeat(np.arange(n_muni), per_muni)
    first = np.cumsum(per_muni) - per_muni
    kind = df["school_type"].to_numpy()
    village = df["settlement_type"].to_numpy() == "village"

    def rank(flag: np.ndarray) -> np.ndarray:
        """Rank (from 0) of each flagged school among the flagged of its municipality."""
        seen = np.cumsum(flag)
        return seen - 1 - np.concatenate([[0], seen])[first][mi]

    form = np.where(village, "МКОУ", np.where(form_draw < 0.5, "МАОУ", "МБОУ")).astype(object)
    number = numbers.astype(str).astype(object)
    names = np.empty(n, dtype=object)
    for pattern_kind, patterns in NUMBERED_NAMES.items():
        for v, pattern in enumerate(patterns):
            sel = (kind == pattern_kind) & (variant % len(patterns) == v)
            head, _, tail = pattern.partition("{n}")
            before, has_form, after = head.partition("{form}")
            left = before + form[sel] + after if has_form else head
            names[sel] = left + number[sel] + tail
    is_vs = village & (kind == "secondary")
    r = rank(is_vs)
    use = is_vs & (r < len(VILLAGES))
    places = np.asarray(VILLAGES, dtype=object)[village_order[mi[use], r[use]]]
    names[use] = "МКОУ «СОШ с. " + places + "»"
    is_vb = village & (kind == "basic")
    r = rank(is_vb)
    use = is_vb & (r < len(VILLAGE_ADJECTIVES))
    words = np.asarray(VILLAGE_ADJECTIVES, dtype=object)[adjective_order[mi[use], r[use]]]
    names[use] = "МКОУ «" + words + " ООШ»"
    names[np.flatnonzero(kind == "other")[0]] = SPECIAL_NAME
    return names
