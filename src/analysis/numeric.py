"""Small numeric helpers shared by the stages (the bottom layer: imports nothing of analysis)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Relative spread under which values count as one number (rounding noise, not variation).
CONSTANT_TOLERANCE = 1e-12


def is_constant(values: pd.Series | np.ndarray) -> bool:
    """Whether the non-missing ``values`` (shape (n,)) are all the same number (or none).

    "The same" allows a spread of :data:`CONSTANT_TOLERANCE` relative to the largest
    magnitude (at least 1): a column equal up to rounding has no variation to analyse.
    """
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return True
    return bool(np.ptp(v) <= CONSTANT_TOLERANCE * max(1.0, float(np.abs(v).max())))
