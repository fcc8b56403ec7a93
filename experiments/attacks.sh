#!/usr/bin/env bash
# The attacks study (experiments/attacks.md): every attack against EdgeRand, LapGraph and GAP-EDP at
# epsilon 1, 2, 4, 8, and the non-private reference, into outputs/experiments/attacks; each block ends
# with the report (SWEEP_DIR/report: summary tables, attack AUROC and eps_lower against epsilon).
# Extra arguments go to every block, e.g.:  bash experiments/attacks.sh hydra/launcher=parallel
# Re-running resumes: runs whose metrics.json exists are skipped.
set -euo pipefail
run() { gnnrisk-run -m experiment=attacks "$@"; }

run "$@"                                     # privacy = edgerand, lapgraph, gap_edp x epsilon = 1, 2, 4, 8
run privacy=none privacy.epsilon=null "$@"   # the non-private reference, no epsilon axis
