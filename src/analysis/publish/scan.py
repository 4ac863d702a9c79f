"""Check a report folder before it goes online: the rules every published file must keep.

Usage::

    python -m analysis.publish.scan reports/2025 [--min-n 10] [--max-regional 1500000]
        [--max-municipal 400000]

Exit code 0 when the folder is clean, 1 with one line per violation (file, place, rule)
otherwise. The rules (each a function below, used by the tests on a region built to tempt
them and by CI on the default region):

- **offline**: no HTML file refers to anything outside itself (no ``http:``, ``https:``
  or protocol-relative URL in ``src``/``href``/CSS, no ``@import``);
- **no injected markup**: the only ``<script>`` is the page's own filter script; no
  ``on…=`` event attribute and no ``javascript:`` URL anywhere (a school named
  ``<script>…`` must have been escaped);
- **no formulas**: no text cell of a CSV or XLSX starts with ``=``, ``+``, ``-``, ``@``,
  tab or CR (Excel would run it);
- **no student data**: no column of a download is a student key, score or mark;
- **small cells**: in a download with a participants column, no share or index is given
  for a row with fewer than ``min_n`` participants;
- **sizes**: the regional report and each municipal report within their limits.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from analysis.publish.page import SCRIPT

#: Columns that would carry student-level data.
STUDENT_COLUMNS = frozenset({"student_key", "student_id", "score", "mark", "ses"})
#: A download's count columns (participants behind the row's values).
COUNT_COLUMNS = ("participants", "n_students")
#: Value columns that must be empty when the row's count is below ``min_n``.
_VALUE = re.compile(r"^(share_|quality_index$|quality_group$|mean_)")
_EXTERNAL_CSS = re.compile(r"""url\(\s*["']?\s*(?:https?:|//)|@import""", re.I)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Page(HTMLParser):
    """Collects what the HTML rules look at: tags with attributes, script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            v = (value or "").strip().lower()
            if name.startswith("on"):
                self.problems.append(f"an event attribute {name}= on <{tag}>")
            if name in ("src", "href", "action", "srcset", "poster", "data") and (
                    v.startswith(("http:", "https:", "//", "ftp:"))):
                self.problems.append(f"external reference <{tag} {name}={value[:60]!r}>")
            if name in ("src", "href", "action") and v.startswith("javascript:"):
                self.problems.append(f"a javascript: URL on <{tag}>")
        if tag in ("iframe", "object", "embed", "base", "meta") and tag != "meta" or (
                tag == "meta" and any(n == "http-equiv" for n, _ in attrs)):
            self.problems.append(f"a <{tag}> element")
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data


def html_violations(path: Path) -> Iterator[str]:
    """Offline and no-injected-markup rules for one HTML file (parsed, so an escaped
    ``<script>`` or ``onerror=`` inside a quoted attribute value is text, not markup)."""
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    for problem in page.problems:
        yield f"{path}: {problem}"
    for script in page.scripts:
        if script.strip() != SCRIPT:
            yield f"{path}: a <script> that is not the page's own: {script.strip()[:60]!r}"
    for style in page.styles:
        if _EXTERNAL_CSS.search(style):
            yield f"{path}: external reference in a stylesheet"


def _frames(path: Path) -> Iterator[tuple[str, pd.DataFrame]]:
    if path.suffix == ".csv":
        yield path.name, pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig",
                                     dtype=object, keep_default_na=False)
    elif path.suffix == ".xlsx":
        for sheet, df in pd.read_excel(path, sheet_name=None, dtype=object).items():
            yield f"{path.name}[{sheet}]", df
    elif path.suffix == ".parquet":
        yield path.name, pd.read_parquet(path)


def table_violations(path: Path, min_n: int) -> Iterator[str]:
    """No-formula, no-student-data and small-cell rules for one download."""
    for where, df in _frames(path):
        cols = [str(c) for c in df.columns]
        if STUDENT_COLUMNS & set(cols):
            found = sorted(STUDENT_COLUMNS & set(cols))
            yield f"{path.parent.name}/{where}: student-level column(s) {found}"
        if path.suffix != ".parquet":
            for col in df.columns:
                cells = [col] + (df[col].tolist() if df[col].dtype == object else [])
                for i, v in enumerate(cells):
                    if isinstance(v, str) and v.startswith(FORMULA_START) and not _is_number(v):
                        row = "header" if i == 0 else f"row {i + 1}"
                        yield (f"{path.parent.name}/{where}: {row}, column {col!r}: text "
                               f"Excel would run: {v[:40]!r}")
        for count in (c for c in COUNT_COLUMNS if c in cols):
            n = pd.to_numeric(df[count], errors="coerce")
            small = n.notna() & (n < min_n)
            for col in (c for c in cols if _VALUE.match(c)):
                v = df.loc[small, col]
                shown = v.notna() & (v.astype(str).str.strip() != "")
                for i in v.index[shown]:
                    yield (f"{path.parent.name}/{where}: row {i + 2}: {col} given for "
                           f"{int(n[i])} < {min_n} {count}")


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def size_violations(folder: Path, max_regional: int | None, max_municipal: int | None
                    ) -> Iterator[str]:
    """The regional report and each municipal report within their byte limits."""
    report = folder / "report.html"
    if max_regional and report.exists() and report.stat().st_size > max_regional:
        yield f"{report}: {report.stat().st_size} bytes > {max_regional}"
    for page in sorted((folder / "mun").glob("*.html")) if max_municipal else []:
        if page.stat().st_size > max_municipal:
            yield f"{page}: {page.stat().st_size} bytes > {max_municipal}"


def scan(folder: str | Path, *, min_n: int = 10, max_regional: int | None = None,
         max_municipal: int | None = None) -> list[str]:
    """Every violation of the publication rules in ``folder`` (empty: safe to publish)."""
    folder = Path(folder)
    out: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".html":
            out += html_violations(path)
        elif path.suffix in (".csv", ".xlsx", ".parquet"):
            out += table_violations(path, min_n)
    out += size_violations(folder, max_regional, max_municipal)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.publish.scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--min-n", type=int, default=10)
    parser.add_argument("--max-regional", type=int, default=None, help="bytes")
    parser.add_argument("--max-municipal", type=int, default=None, help="bytes")
    args = parser.parse_args(argv)
    found = scan(args.folder, min_n=args.min_n, max_regional=args.max_regional,
                 max_municipal=args.max_municipal)
    for line in found:
        print(line)
    n_files = sum(1 for p in Path(args.folder).rglob("*") if p.is_file())
    print(f"{len(found)} violation(s) in {n_files} files of {args.folder}",
          file=sys.stderr if found else sys.stdout)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
