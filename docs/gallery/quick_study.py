# %% [markdown]
# # The quick study from Python
#
# `make run` runs the quick study (`gnnrisk-run -m experiment=quick`): the non-private GCN and the
# edge-blind MLP as references, edge-level EdgeRand and GAP-EDP and node-level GAP-NDP at epsilon 1, 2
# and 8, five seeds, on the default 5000-node synthetic population ([the write-up](../studies/quick.html)).
# Here the same study runs from Python with `gnnrisk.sweep`, on a 300-node population with 10 training
# epochs and two seeds, so that it takes about half a minute on two cores; then its summary table, the
# paired differences to the non-private run and two plots, read with `gnnrisk.report`.
#
# At this size the numbers are noise around the study's answer (a 75-node test split, two seeds); the
# code is what carries over: drop the size overrides and `seed=0,1` to run the study itself.
#
# Everything is written into a temporary folder (`GNNRISK_GALLERY_OUT` names another one).

# %%
import os
import tempfile
import warnings
from pathlib import Path

import gnnrisk
import gnnrisk.report

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
OUT = Path(os.environ.get("GNNRISK_GALLERY_OUT") or tempfile.mkdtemp(prefix="gnnrisk-gallery-")) / "quick_study"
SMALL = ["data.num_nodes=300", "train.epochs=10", "threads=1",
         "hydra.job_logging.root.level=WARNING"]  # console: warnings only (app.log keeps everything)


def show(path: Path) -> None:
    """A PNG in the notebook; its path when run as a script."""
    try:
        from IPython.display import Image, display
    except ImportError:
        print(path)
        return
    display(Image(filename=str(path)))


# %% [markdown]
# ## The sweep
#
# A grid given as a command line is what `gnnrisk-run -m` reads: `experiment=quick` brings the study's
# own grid (its blocks: the two references, then three mechanisms x three epsilons), `seed=0,1` replaces
# its five seeds. `overrides` are added to every job. One run folder per job, named by its overrides;
# each finished run prints one line.

# %%
runs = gnnrisk.sweep(["experiment=quick", "seed=0,1"], sweep_dir=OUT, overrides=SMALL)
print(len(runs), "runs,", (runs["status"] == "finished").sum(), "finished")
runs[["model", "mechanism", "seed", "epsilon", "test_auroc_true"]].head(6)

# %% [markdown]
# `runs` is the run table, one row per run folder, as `gnnrisk.report.load(OUT)` reads it back: the
# status, every config value as a `cfg.*` column, every metric of `metrics.json`.

# %%
assert len(runs) == 22 and (runs["status"] == "finished").all()
assert set(runs["privacy_unit"].dropna()) == {"edge", "node"}

# %% [markdown]
# ## The summary and the paired differences
#
# `summarize` groups the runs that differ only by seed: mean, standard deviation and a 95% t-interval
# of each metric, and for each private group the difference to the non-private GCN of the same seed
# (same population, same split), which removes most of the between-seed variance.

# %%
summary = gnnrisk.report.summarize(runs, ["test_auroc_true", "test_auroc"])
print(gnnrisk.report.to_markdown(gnnrisk.report.display_table(summary)))

# %%
paired = gnnrisk.report.paired_table(summary)
print(gnnrisk.report.to_markdown(paired))

# %%
assert len(summary) == 11  # 2 references + 3 mechanisms x 3 epsilons
assert "test_auroc_true_diff_mean" in summary.columns

# %% [markdown]
# ## The plots
#
# Utility against the epsilon each group spent, with its 95% band, the references as dashed lines:
# the figure on the home page, at this small size. Then the Pareto front: which settings no other
# setting beats on both privacy (a smaller epsilon) and utility.

# %%
paths = gnnrisk.report.plot_metric_vs_x(summary, "test_auroc_true", "epsilon", OUT)
show(paths[0])

# %%
front = gnnrisk.report.plot_pareto(summary, "epsilon", "test_auroc_true", OUT)
show(front[0])

# %%
assert all(p.is_file() for p in [*paths, *front])

# %% [markdown]
# The whole report of the folder, as `gnnrisk-report SWEEP_DIR` writes it (tables as CSV, Markdown and
# LaTeX, these plots as PNG and PDF, and with `html=True` one page with all of them):

# %%
report = gnnrisk.report.make_report(OUT)
print(sorted(p.name for p in report.written)[:8], "...")
