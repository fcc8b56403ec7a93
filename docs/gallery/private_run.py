# %% [markdown]
# # A private run, read end to end
#
# One run with edge-level privacy and one with node-level privacy, and how to read what they report:
# what the epsilon covers (which neighbouring relation, which outputs), the privacy keys of
# `metrics.json`, where the training curve goes when it was computed on private labels (the
# `diagnostics/` folder, outside the budget), and the warning a run prints when its noise drowned the
# signal. Background: the [privacy page](../config/privacy.html) and
# [run folders and metrics.json](../metrics.html#privacy).
#
# A 300-node synthetic population and a few epochs, so that both runs take seconds; everything is
# written into a temporary folder (`GNNRISK_GALLERY_OUT` names another one).

# %%
import json
import os
import tempfile
import warnings
from pathlib import Path

import gnnrisk

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
OUT = Path(os.environ.get("GNNRISK_GALLERY_OUT") or tempfile.mkdtemp(prefix="gnnrisk-gallery-")) / "private_run"
SMALL = ["data.num_nodes=300", "train.epochs=10", "threads=1"]
# Hydra's logging settings: the console shows warnings only, without date
# and time (each run's app.log keeps its timestamps).
SMALL += ["hydra.job_logging.root.level=WARNING",
          "+hydra.job_logging.formatters.brief.format='%(levelname)s %(name)s: %(message)s'",
          "hydra.job_logging.handlers.console.formatter=brief"]
PRIVACY_KEYS = ("mechanism", "privacy_unit", "epsilon", "delta", "epsilon_covers", "history_file",
                "diagnostics_outside_epsilon")

# %% [markdown]
# ## Edge level: GAP-EDP at epsilon 4
#
# GAP (Sajadmanesh et al., USENIX Security 2023) adds Gaussian noise to every aggregation over the
# graph. Its guarantee is **edge-level**: two graphs that differ in one tie give almost the same
# released model (`privacy_unit: edge`). The labels are not protected by it, so the training curve
# and early stopping on validation labels stay public: `history.csv` sits in the run folder.

# %%
edge = gnnrisk.run([*SMALL, "privacy=gap_edp", "privacy.epsilon=4", "privacy.encoder_epochs=10"],
                   run_dir=OUT / "gap_edp")
print(f"OUT/{edge.run_dir.relative_to(OUT)}: test_auroc {edge.metrics['test_auroc']:.3f}")
print(json.dumps({k: edge.metrics.get(k) for k in PRIVACY_KEYS}, indent=1))
print(sorted(p.name for p in edge.run_dir.iterdir()))

# %% [markdown]
# - `epsilon` is what the run **spent**, computed by the accountant (at most the `target_epsilon` asked
#   for), with `delta` beside it: GAP is (epsilon, delta)-DP.
# - `epsilon_covers: model`: the budget covers the released model and its predictions. (EdgeRand and
#   LapGraph release a perturbed graph instead: `graph`, and everything computed from it.)
# - GAP also records what it calibrated: the noise of each hop and its signal against that noise.

# %%
assert edge.metrics["privacy_unit"] == "edge" and edge.metrics["epsilon_covers"] == "model"
assert edge.metrics["epsilon"] <= edge.metrics["target_epsilon"] + 1e-9
assert (edge.run_dir / "history.csv").is_file() and not (edge.run_dir / "diagnostics").exists()
{k: v for k, v in edge.metrics.items() if k.startswith(("hop", "aggregation_noise", "noise_multiplier"))}

# %% [markdown]
# ## Node level: GAP-NDP at epsilon 1
#
# GAP-NDP protects a whole **node**: its features, its label and all its ties (`privacy_unit: node`),
# with DP-SGD on the encoder and the classifier and a bound on every node's degree. Now the labels are
# private: the mechanism trains for a fixed number of epochs and keeps the last weights (no early
# stopping on private validation labels), and the training curve, computed on private labels, is
# **not covered by epsilon**. It goes to `diagnostics/`, beside a file that says so, and
# `metrics.json` points there.

# %%
node = gnnrisk.run([*SMALL, "privacy=gap_ndp", "privacy.epsilon=1", "privacy.encoder_epochs=2", "privacy.epochs=2"],
                   run_dir=OUT / "gap_ndp")
print(json.dumps({k: node.metrics.get(k) for k in PRIVACY_KEYS}, indent=1))
print(sorted(p.name for p in node.run_dir.iterdir()))
print(sorted(p.name for p in (node.run_dir / "diagnostics").iterdir()))
print((node.run_dir / "diagnostics" / "NOT_COVERED_BY_EPSILON.txt").read_text())

# %%
assert node.metrics["privacy_unit"] == "node" and node.metrics["epsilon"] <= 1 + 1e-9
assert node.metrics["diagnostics_outside_epsilon"] == "diagnostics"
assert node.metrics["history_file"] == "diagnostics/history.csv"
assert not (node.run_dir / "history.csv").exists()

# %% [markdown]
# ## Did the noise drown the signal?
#
# A private model at chance level is either a weak mechanism or a mis-set one. Every private run
# estimates, per part of its mechanism, its signal against its noise from what it released (so the
# estimate is post-processing, inside the budget) and sets `*_drowned` when the signal cannot be told
# from noise; the run then logs one warning line, which is the `WARNING` above:
# `privacy=gap_ndp: the noise drowns the signal in ...`. At epsilon 1, with two DP-SGD epochs over the
# training nodes of a 300-node graph, every part of GAP-NDP is drowned: whatever the model scores, it
# did not learn it from the data.

# %%
from gnnrisk.privacy.diagnostics import drowned_parts  # the parts the warning names

print(node.metrics["num_train"], "training nodes; drowned:", *drowned_parts(node.metrics), sep="\n  ")
{k: v for k, v in node.metrics.items() if k.endswith(("_drowned", "_snr", "_steps"))}

# %%
verdicts = {k: v for k, v in node.metrics.items() if k.endswith("_drowned")}
assert verdicts and all(verdicts.values()), verdicts
assert len(drowned_parts(node.metrics)) == len(verdicts)

# %% [markdown]
# The exact signal-to-noise ratios, read from the per-example gradients of private data, are outside
# the budget too: `diagnostics/diagnostics.json`.

# %%
json.loads((node.run_dir / "diagnostics" / "diagnostics.json").read_text())
