"""Paired contrasts between mechanisms of the tradeoff grid, seed by seed, from its runs.csv.

The report pairs every private run with the non-private run of the same model and seed. The
orderings a paper states compare mechanisms with each other: GAP-EDP vs the edge-blind MLP
(GAP's Facebook ordering), the node-level graph methods vs DP-MLP (DPDGC's finding), GAP-EDP vs
graph perturbation. Runs of one seed share the population and the split, so each contrast is a
mean over seeds of per-seed differences, with its 95% Student-t interval (`*` = excludes 0).

    python experiments/tradeoff_contrasts.py [outputs/tradeoff/report/runs.csv] [--metric test_auroc_true]
"""

from __future__ import annotations

import argparse

import pandas as pd

from gnnrisk.report.contrasts import paired_cell, runs_by_seed

EPSILONS = (0.5, 1, 2, 4, 8, 16)
# (label, minuend (mechanism, model), subtrahend (mechanism, model, same epsilon?))
CONTRASTS = (
    ("GAP-EDP − MLP (none)", ("gap_edp", "gcn"), ("none", "mlp", False)),
    ("GAP-EDP − EdgeRand (GCN)", ("gap_edp", "gcn"), ("edgerand", "gcn", True)),
    ("GAP-EDP − LapGraph (GCN)", ("gap_edp", "gcn"), ("lapgraph", "gcn", True)),
    ("GAP-NDP − DP-MLP", ("gap_ndp", "gcn"), ("dp_mlp", "mlp", True)),
    ("DP-SGD node (SAGE) − DP-MLP", ("dpsgd_node", "sage"), ("dp_mlp", "mlp", True)),
    ("GAP-NDP − DP-SGD node (SAGE)", ("gap_ndp", "gcn"), ("dpsgd_node", "sage", True)),
    ("DPDGC-EDP − GAP-EDP", ("dpdgc_edp", "gcn"), ("gap_edp", "gcn", True)),
    ("DPDGC-NDP − GAP-NDP", ("dpdgc_ndp", "gcn"), ("gap_ndp", "gcn", True)),
    ("DPDGC-NDP − DP-MLP", ("dpdgc_ndp", "gcn"), ("dp_mlp", "mlp", True)),
)


def contrast_table(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per contrast, one column per target epsilon."""
    runs = runs[runs["status"] == "finished"]
    table = {}
    for label, (mech, model), (ref, ref_model, same_eps) in CONTRASTS:
        table[label] = {f"ε={eps:g}": paired_cell(runs_by_seed(runs, mech, model, eps)[metric]
                                                  - runs_by_seed(runs, ref, ref_model, eps if same_eps else None)[metric])
                        for eps in EPSILONS}
    return pd.DataFrame(table).T


def main() -> None:
    """Print the contrasts as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", default="outputs/tradeoff/report/runs.csv")
    parser.add_argument("--metric", default="test_auroc_true")
    args = parser.parse_args()
    table = contrast_table(pd.read_csv(args.runs), args.metric)
    print(f"| {args.metric}: paired over seeds | " + " | ".join(table.columns) + " |")
    print("|---|" + "---|" * len(table.columns))
    for label, row in table.iterrows():
        print(f"| {label} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
