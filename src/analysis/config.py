"""Parameters and paths: read ``params.yaml`` and hand each stage its sections.

``params.yaml`` is the single source of truth for parameters.  ``dvc.yaml`` declares which
keys a stage reads (``year``, a whole section ``flags``, or one key of a section
``ses_link.terms``); :func:`stage_parameters` selects exactly those, in params.yaml's own
shape, and the runner injects them into the stage notebook as one variable, ``params``
(the notebook's ``parameters`` cell reads the same from ``params.yaml`` when it is run by
hand).  :func:`flatten` gives the flat names the report's methods appendix lists
(``clusters.k`` -> ``clusters_k``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

#: Processed data written by the pipeline stages (relative to the project root).
PROCESSED = Path("data/processed")
#: Published outputs.
REPORTS = Path("reports")


#: libyaml's safe loader where PyYAML was built with it (the same YAML, about ten times
#: faster: the catalogue of strings took 0.8 s in pure Python in every stage).
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: Any) -> Any:
    """``yaml.safe_load`` with :data:`SafeLoader` (a string or an open file)."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 -- a safe loader


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file gives ``{}``."""
    with open(path, encoding="utf-8") as fh:
        data = safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def flatten(params: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Flatten the named top-level keys of ``params`` into notebook parameter names.

    Parameters
    ----------
    params : mapping
        The parsed ``params.yaml``.
    keys : sequence of str
        Top-level keys to take: a scalar or list key is passed as is, a section (a mapping)
        is split into ``<section>_<key>`` entries.  ``"clusters.k"`` takes one key of a
        section.

    Returns
    -------
    dict
        Parameter name -> value, sorted by name.
    """
    out: dict[str, Any] = {}
    for name, value in select(params, keys).items():
        if isinstance(value, Mapping):
            out.update({f"{name}_{k}": v for k, v in value.items()})
        else:
            out[name] = value
    return dict(sorted(out.items()))


def stage_param_keys(dvc: Mapping[str, Any], stage: str) -> list[str]:
    """The ``params:`` list of a stage in a parsed ``dvc.yaml`` (default params file only)."""
    try:
        entries = dvc["stages"][stage].get("params", [])
    except KeyError as exc:
        raise KeyError(f"dvc.yaml has no stage '{stage}'") from exc
    keys: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            keys.append(entry)
        else:  # {"other_params.yaml": [...]} -- not used by this project
            raise ValueError(f"stage '{stage}': only params.yaml keys are supported, got {entry}")
    return keys


def select(params: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The named keys of ``params``, in its own nested shape.

    Parameters
    ----------
    params : mapping
        The parsed ``params.yaml``.
    keys : sequence of str
        Top-level keys (``"year"``, ``"flags"``) or one key of a section
        (``"ses_link.terms"``, which gives ``{"ses_link": {"terms": ...}}``).

    Returns
    -------
    dict
        A deep copy: changing it leaves ``params`` as it is.
    """
    out: dict[str, Any] = {}
    for key in keys:
        section_name, _, sub = key.partition(".")
        if section_name not in params:
            raise KeyError(f"params.yaml has no key '{section_name}'")
        value = params[section_name]
        if sub:
            if not isinstance(value, Mapping) or sub not in value:
                raise KeyError(f"params.yaml has no key '{key}'")
            out.setdefault(section_name, {})[sub] = copy.deepcopy(value[sub])
        else:
            out[section_name] = copy.deepcopy(value)
    return out


def merge(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``overrides`` applied: sections merge key by key, one level deep.

    A value inside a section replaces the project's value whole, so an override of
    ``index.indicators`` lists exactly the indicators to use; anything else (``year``)
    replaces the value.
    """
    out = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_parameters(stage: str, root: str | Path = ".") -> dict[str, Any]:
    """What a pipeline stage receives as ``params``: the keys ``dvc.yaml`` declares for it,
    from ``params.yaml`` (both read under ``root``), in params.yaml's shape (:func:`select`)."""
    root = Path(root)
    params = load_yaml(root / "params.yaml")
    dvc = load_yaml(root / "dvc.yaml")
    return select(params, stage_param_keys(dvc, stage))


def section(namespace: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A ``params.yaml`` section back from a notebook's flattened parameters: the entries
    ``<name>_<key>`` of ``namespace`` (e.g. ``globals()``) as ``{key: value}``, sorted."""
    prefix = f"{name}_"
    return {k[len(prefix):]: v for k, v in sorted(namespace.items())
            if k.startswith(prefix) and not callable(v)}
