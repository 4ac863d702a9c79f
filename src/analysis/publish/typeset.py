"""Numbers and typography of the published pages, by the reader's conventions.

Russian (``ru``): decimal comma (``0,25``), thousands separated by a narrow no-break space
from five digits on (``21 639``; four-digit numbers such as years stay whole), a true minus
sign (``−0,12``, U+2212), and a no-break space after «№» (``СОШ № 5`` never splits).
English (``en``): decimal point, thousands comma from five digits on, the same minus and
«№» rules.

Two entry points:

- :func:`number` formats one value (the report's formatters call it);
- :func:`typeset_html` applies the same conventions to every number in the text of a whole
  HTML page (the last step before a page is written), skipping markup, ``<style>``,
  ``<script>``, ``<code>`` and any element marked ``translate="no"`` (school codes, file
  hashes, versions), so a number formatted anywhere -- a table cell, a catalogue sentence,
  a figure caption -- reads the same way.

Both are pure functions of their input (no locale of the machine is consulted), so the
same run gives the same bytes anywhere.
"""

from __future__ import annotations

import re
from typing import Any

MINUS = "\u2212"      # −
NNBSP = "\u202f"      # narrow no-break space: thousands separator (ru)
NBSP = "\u00a0"       # no-break space: «№ 5»

#: A plain number as Python prints it: optional sign, digits, optional fraction, optional %.
#: Not part of a longer token (a code "0101001", a version "3.1.5", a hash "a12f3", a date
#: "2024/25", a range "2..10" stay as they are).
_NUMBER = re.compile(
    r"(?<![\w.,/:#\-\u2212])"            # not inside a word, version, path or range
    r"(?P<sign>[-+\u2212]?)"
    r"(?P<int>\d+)"
    r"(?:\.(?P<frac>\d+))?"
    r"(?P<pct>%?)"
    r"(?![\w/]|\.\d|,\d)"                # not followed by more of a token
)
#: Elements whose text is never typeset.
_SKIP = ("style", "script", "code", "pre", "kbd", "samp", "textarea")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")


def group_digits(digits: str, lang: str) -> str:
    """``"21639"`` -> ``"21 639"`` (ru) or ``"21,639"`` (en); four digits (a year) stay whole."""
    if len(digits) < 5 or digits[0] == "0":
        return digits  # a leading zero: a code, not a quantity
    sep = NNBSP if lang == "ru" else ","
    head = len(digits) % 3 or 3
    return digits[:head] + "".join(sep + digits[i:i + 3] for i in range(head, len(digits), 3))


def _localise(sign: str, whole: str, frac: str | None, pct: str, lang: str) -> str:
    sign = MINUS if sign in ("-", MINUS) else sign
    if frac is not None and not whole.strip("0") and not frac.strip("0") and sign == MINUS:
        sign = ""  # never a negative zero
    text = group_digits(whole, lang)
    if frac is not None:
        text += ("," if lang == "ru" else ".") + frac
    return sign + text + pct


def number(value: Any, spec: str = "", lang: str = "ru") -> str:
    """``value`` formatted with the format ``spec`` (``".3f"``, ``"+.2f"``, ``".1%"``, ``"d"``)
    and written by the conventions of ``lang``.

    >>> number(-0.125, ".3f"), number(21639, "d"), number(0.275, ".1%"), number(-0.0001, ".2f")
    ('−0,125', '21\u202f639', '27,5%', '0,00')
    """
    text = format(value, spec.replace(",", ""))  # grouping is the convention's job
    return _NUMBER.sub(lambda m: _localise(m["sign"], m["int"], m["frac"], m["pct"], lang),
                       text)


def typeset_text(text: str, lang: str = "ru") -> str:
    """Every free-standing number of ``text`` by the conventions of ``lang``; «№ 5» joined."""
    out = _NUMBER.sub(lambda m: _localise(m["sign"], m["int"], m["frac"], m["pct"], lang), text)
    out = re.sub(r"№\s*(?=\S)", "№" + NBSP, out)
    out = re.sub(r"(?<=\s)-(?=\s)", "\u2013", out)  # a spaced hyphen is a dash
    return out


def typeset_html(page: str, lang: str = "ru") -> str:
    """:func:`typeset_text` on the text between the tags of ``page``.

    Skips the content of ``<style>``, ``<script>``, ``<code>``, ``<pre>`` and of every
    element with a ``translate="no"`` attribute; attributes are never changed (so an
    ``alt`` text or a ``data:`` URL stays as written).
    """
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # (tag, skipping) of open elements that change skipping
    skipping = False
    pos = 0
    for m in _TAG.finditer(page):
        text = page[pos:m.start()]
        out.append(text if skipping or not text.strip() else typeset_text(text, lang))
        out.append(m.group(0))
        pos = m.end()
        closing, tag, attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
        if attrs.rstrip().endswith("/"):
            continue
        if not closing and (tag in _SKIP or 'translate="no"' in attrs):
            stack.append((tag, skipping))
            skipping = True
        elif closing and stack and stack[-1][0] == tag:
            skipping = stack.pop()[1]
    tail = page[pos:]
    out.append(tail if skipping or not tail.strip() else typeset_text(tail, lang))
    return "".join(out)
