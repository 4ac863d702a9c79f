"""How well the context clusters recover the synthetic region's planted context structure.

Run on demand (``make bench``); not part of the tests (``tests/context/test_clusters.py`` asserts a
floor on three seeds).  For several fresh seeds of the default-size demo region, stages 01
and 02 run in memory with the project's ``params.yaml``, and the clusters of the reporting
year are compared with the planted ``context_group`` of the truth (municipality kind x
settlement type: ``urban/city``, ``urban/town``, ``rural/town``, ``rural/village``) by the
adjusted Rand index (ARI: 1 = the same partition, about 0 = chance).  Each clustering
method is run with the parameters' k (``auto`` by default), side by side.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("kmeans", "gmm", "ward")


def recovery(seed: int, params: dict) -> dict[str, tuple[float, int, float]]:
    """ARI with the planted groups, chosen k and bootstrap ARI of each method, for one seed."""
    from analysis.context.stage import context_stage
    from analysis.demo.synth import RegionSpec, generate_region
    from analysis.ingest import io, prepare

    region = generate_region(RegionSpec(seed=seed))
    year = RegionSpec().years[-1]
    p = params["prepare"]
    prep = prepare.prepare(io.from_frame(region.schools, "schools"),
                           io.from_frame(region.results, "results"),
                           year=year, procedures=p["quality_procedures"],
                           subjects=p["quality_subjects"], grades=p["quality_grades"],
                           formula=p["quality_formula"], validated=True)
    truth = region.truth.set_index("school_id")["context_group"]
    out = {}
    for method in METHODS:
        res = context_stage(
            prep.schools, prep.school_year, year=year, min_n=params["min_n"],
            index=params["index"], quality_groups=params["quality_groups"],
            clusters={**params["clusters"], "method": method}, similar=params["similar"])
        c = res.clusters
        out[method] = (adjusted_rand_score(truth.loc[c["school_id"]], c["cluster"]),
                       res.model.k_, res.summary["clusters"]["stability_ari"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303, 404, 505])
    args = parser.parse_args()
    from analysis.config import load_yaml

    params = load_yaml(ROOT / "params.yaml")
    rows = {s: recovery(s, params) for s in args.seeds}
    print(f"ARI of the clusters with the planted context groups (k: {params['clusters']['k']});"
          " in brackets: chosen k, bootstrap stability ARI")
    for method in METHODS:
        cells = "  ".join(f"{rows[s][method][0]:.3f} ({rows[s][method][1]}, "
                          f"{rows[s][method][2]:.2f})" for s in args.seeds)
        med = statistics.median(rows[s][method][0] for s in args.seeds)
        print(f"  {method:7s} median {med:.3f}   seeds {args.seeds}: {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
