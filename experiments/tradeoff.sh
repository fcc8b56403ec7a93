#!/usr/bin/env bash
# The full accuracy-privacy grid (experiments/tradeoff.md) as compatible blocks into outputs/tradeoff.
# Extra arguments go to every block, e.g.:  bash experiments/tradeoff.sh hydra/launcher=slurm
# Re-running the script resumes: runs whose metrics.json exists are skipped.
set -euo pipefail
run() { gnnrisk-run -m experiment=tradeoff "$@"; }

run privacy=edgerand,lapgraph,gap_edp,gap_ndp model=gcn,sage "$@"   # edge-level and GAP-NDP: graph models
run privacy=dpsgd_node model=sage "$@"                               # node-level DP-SGD: GraphSAGE only
run privacy=dp_mlp model=mlp "$@"                                    # features only
run privacy=none privacy.epsilon=null model=gcn,sage,mlp "$@"        # non-private references, no epsilon axis
