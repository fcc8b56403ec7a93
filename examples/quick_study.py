# %% [markdown]
# # A small privacy study from Python
#
# From data to plot with gnnrisk's Python API (docs/api.md): one run, a 3 x 2 grid (edge-level DP
# with GAP at three privacy budgets x two seeds) on a 300-node synthetic population, its
# non-private reference, then the run table, the summary table and a plot of utility against the
# spent epsilon. Every run folder is what `gnnrisk-run` writes, so `gnnrisk-report` reads the sweep
# folder too.
#
# A jupytext percent-format script: run it as it is (`.venv/bin/python examples/quick_study.py`), or
# open it as a notebook (`jupytext --to notebook examples/quick_study.py`). Sizes and the output
# folder come from the environment (the test suite makes them tiny):
# `GNNRISK_EXAMPLE_OUT` (default outputs/examples/quick_study), `GNNRISK_EXAMPLE_NODES` (300),
# `GNNRISK_EXAMPLE_EPOCHS` (training epochs, default 100).

# %%
import os
from pathlib import Path

import gnnrisk
import gnnrisk.report

OUT = Path(os.environ.get("GNNRISK_EXAMPLE_OUT", "outputs/examples/quick_study"))
NODES = int(os.environ.get("GNNRISK_EXAMPLE_NODES", "300"))
EPOCHS = int(os.environ.get("GNNRISK_EXAMPLE_EPOCHS", "100"))
SMALL = [f"data.num_nodes={NODES}", f"train.epochs={EPOCHS}", "threads=1"]
SWEEP = OUT / "sweep"

# %% [markdown]
# ## One run
#
# `gnnrisk.run` takes the overrides of `gnnrisk-run` and returns the run's metrics (as in its
# metrics.json), its folder, its config, the graph and the trained model.

# %%
result = gnnrisk.run([*SMALL, "privacy=gap_edp", "privacy.epsilon=4", f"privacy.encoder_epochs={EPOCHS}"],
                     run_dir=OUT / "single")
print(result)
print("spent epsilon", result.metrics["epsilon"], "test AUROC vs ground truth", result.metrics["test_auroc_true"])
print("files:", sorted(p.name for p in result.run_dir.iterdir()))
risk = result.trained.predict_proba()[:, 1]  # the released model's risk score of every node
print(f"{result.data.num_nodes} nodes, mean predicted risk {float(risk.mean()):.3f}")

# %% [markdown]
# ## The grid: three privacy budgets x two seeds
#
# A mapping is crossed like `gnnrisk-run -m privacy.epsilon=1,4,16 seed=0,1`; `overrides` hold what
# all runs share. One run folder per job, named by its overrides; a second call skips the runs that
# finished (`skip_finished=false` recomputes them).

# %%
runs = gnnrisk.sweep({"privacy.epsilon": [1, 4, 16], "seed": [0, 1]}, sweep_dir=SWEEP,
                     overrides=[*SMALL, "privacy=gap_edp", f"privacy.encoder_epochs={EPOCHS}"])
runs[["run", "status", "epsilon", "test_auroc_true"]]

# %% [markdown]
# The non-private reference (the same GCN, the same seeds) goes into the same folder: the report
# pairs every private run with it, seed by seed.

# %%
gnnrisk.sweep({"privacy": "none", "seed": [0, 1]}, sweep_dir=SWEEP, overrides=SMALL)

# %% [markdown]
# ## Load, summarise, tabulate
#
# `gnnrisk.report.load` reads every run folder under the sweep folder (what `gnnrisk-report` reads),
# `summarize` groups runs that differ only by seed (mean, std, 95% t-interval, paired difference to the
# non-private run), `display_table` and `paired_table` give the text tables of summary.md and paired.md.
#
# Two seeds are enough to run the example, not to conclude anything: with one degree of freedom the
# t-interval is 12.7 standard errors wide on each side, so it usually reaches past what an AUROC can
# take. The tables show such an interval clipped to [0, 1] and marked †, with a sentence under the
# table (`footnotes`); the plots mark the clipped ends and say on their face that n < 3.

# %%
runs = gnnrisk.report.load(SWEEP)
summary = gnnrisk.report.summarize(runs, ["test_auroc_true", "test_auroc"])
table = gnnrisk.report.display_table(summary)
(OUT / "summary.md").write_text(gnnrisk.report.to_markdown(table, notes=False))  # the table alone
print(gnnrisk.report.to_markdown(table))  # the table, and under it what a † means
seeds = int(summary["n_runs"].min())
if seeds < 3:
    print(f"{seeds} seed(s) per group: the 95% intervals are too wide to tell these groups apart; "
          f"use 3 or more (the studies use 5)")
paired = gnnrisk.report.paired_table(summary)
print(gnnrisk.report.to_markdown(paired) if paired is not None else "no paired differences")

# %% [markdown]
# ## Plot
#
# Utility against the epsilon each group spent, with its 95% band (clipped to [0, 1], the clipped ends
# marked ▲▼); the non-private reference as a dashed line. The plot functions write PNG and PDF into a
# folder and return the paths (in a notebook: `IPython.display.Image(paths[0])`).

# %%
paths = gnnrisk.report.plot_metric_vs_x(summary, "test_auroc_true", "epsilon", OUT)
print("plot:", *paths)

# %% [markdown]
# The whole report of the folder, as `gnnrisk-report outputs/examples/quick_study/sweep` writes it:
# `gnnrisk.report.make_report(SWEEP)` (tables and plots into SWEEP/report).
