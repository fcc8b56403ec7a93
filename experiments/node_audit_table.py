"""The node_audit write-up's table, read from the sweep's run folders (metrics.json and config.yaml).

    python experiments/node_audit_table.py [outputs/node_audit]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ORDER = ["gap_ndp", "progap_ndp", "dpsgd_node", "dp_mlp", "dpdgc_ndp", "none"]


def rows(sweep: Path) -> dict[tuple[str, str, float | None], list[dict]]:
    """Finished runs grouped by (mechanism, model, target epsilon), each group ordered by seed."""
    groups: dict[tuple[str, str, float | None], list[dict]] = defaultdict(list)
    for metrics_file in sorted(sweep.glob("*/metrics.json")):
        cfg = yaml.safe_load((metrics_file.parent / "config.yaml").read_text())
        metrics = json.loads(metrics_file.read_text())
        privacy = cfg["privacy"]["name"]
        eps = None if privacy == "none" else float(cfg["privacy"]["epsilon"])
        groups[(privacy, cfg["model"]["name"], eps)].append({"seed": cfg["seed"], **metrics})
    return {k: sorted(v, key=lambda m: m["seed"]) for k, v in groups.items()}


def main() -> None:
    """Print the Markdown table: eps_lower per seed and its maximum against the reported epsilon."""
    sweep = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/node_audit")
    print("| mechanism | model | target eps | reported eps (re-run, max) | eps_lower per seed | max eps_lower "
          "| AUROC mean | test AUROC mean |")
    print("|---|---|---|---|---|---|---|---|")
    groups = rows(sweep)
    for key in sorted(groups, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1], k[2] or 0)):
        runs = groups[key]
        lows = [r["attack_canary_nodes_eps_lower"] for r in runs]
        reported = [r.get("attack_canary_nodes_target_epsilon") for r in runs]
        reported_max = "null" if any(v is None for v in reported) else f"{max(reported):.3f}"
        auroc = sum(r["attack_canary_nodes_auroc"] for r in runs) / len(runs)
        test = sum(r["test_auroc"] for r in runs) / len(runs)
        eps = "-" if key[2] is None else f"{key[2]:.1f}"
        print(f"| {key[0]} | {key[1]} | {eps} | {reported_max} | {', '.join(f'{v:.3f}' for v in lows)} "
              f"| {max(lows):.3f} | {auroc:.3f} | {test:.3f} |")


if __name__ == "__main__":
    main()
