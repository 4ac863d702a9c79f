"""The one catalogue of Russian and English strings (``labels.yaml``).

Every user-facing string -- report prose, headings, column labels, category names --
lives in ``labels.yaml`` as ``key: {ru: ..., en: ...}``.  Code and notebooks refer to keys,
never to literal Russian or English text.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from analysis.config import safe_load

LANGS = ("ru", "en")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """All entries of ``labels.yaml``, flattened to dotted keys."""
    text = resources.files("analysis").joinpath("labels.yaml").read_text(encoding="utf-8")
    flat: dict[str, dict[str, str]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and set(value) <= set(LANGS) and value:
                flat[dotted] = value
            elif isinstance(value, dict):
                walk(value, dotted + ".")
            else:
                raise ValueError(f"labels.yaml: '{dotted}' must map languages to strings")

    walk(safe_load(text), "")
    return flat


def t(key: str, lang: str = "ru", **fmt: Any) -> str:
    """Translate ``key`` into ``lang``; ``fmt`` fills ``{placeholders}``.

    Raises ``KeyError`` for an unknown key or language, so a typo fails a test rather than
    printing a blank in a published report.
    """
    if lang not in LANGS:
        raise KeyError(f"unknown language '{lang}' (known: {', '.join(LANGS)})")
    try:
        text = catalogue()[key][lang]
    except KeyError as exc:
        raise KeyError(f"labels.yaml has no '{key}' in '{lang}'") from exc
    return text.format(**fmt) if fmt else text


#: Category kinds with open codes: the contract accepts any assessment's or subject's label.
OPEN_KINDS = ("procedure", "subject")


def label(kind: str, value: Any, lang: str = "ru") -> str:
    """Label of a category value, e.g. ``label("school_type", "basic")`` -> «ООШ».

    A code of an open kind (:data:`OPEN_KINDS`) that the catalogue does not know, e.g. an
    assessment ``LANG``, is shown as the analyst gave it; other unknown keys raise.
    """
    if kind in OPEN_KINDS and f"{kind}.{value}" not in catalogue():
        return str(value)
    return t(f"{kind}.{value}", lang)
