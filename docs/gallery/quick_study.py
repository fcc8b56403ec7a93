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
import base64
import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path

import gnnrisk
import gnnrisk.report

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
OUT = Path(os.environ.get("GNNRISK_GALLERY_OUT") or tempfile.mkdtemp(prefix="gnnrisk-gallery-")) / "quick_study"
SMALL = ["data.num_nodes=300", "train.epochs=10", "threads=1"]
# Hydra's logging settings: the console shows warnings only, without date
# and time (each run's app.log keeps its timestamps).
SMALL += ["hydra.job_logging.root.level=WARNING",
          "+hydra.job_logging.formatters.brief.format='%(levelname)s %(name)s: %(message)s'",
          "hydra.job_logging.handlers.console.formatter=brief"]


def in_notebook() -> bool:
    """Whether this runs in a notebook (Jupyter, the site's build), not as a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def show(path: Path, alt: str) -> None:
    """A PNG in the notebook, with its alt text; its path as a script."""
    if not in_notebook():
        print(path)
        return
    from IPython.display import HTML, display

    data = base64.b64encode(path.read_bytes()).decode()
    display(HTML(f'<img src="data:image/png;base64,{data}" alt="{alt}">'))


def show_table(table) -> None:
    """A gnnrisk.report text table: rendered in the notebook, printed as a script."""
    text = gnnrisk.report.to_markdown(table)
    if not in_notebook():
        print(text)
        return
    from IPython.display import Markdown, display

    display(Markdown(text))


# %% [markdown]
# ## The sweep
#
# A grid given as a command line is what `gnnrisk-run -m` reads: `experiment=quick` brings the study's
# own grid (its blocks: the two references, then three mechanisms x three epsilons), `seed=0,1` replaces
# its five seeds. `overrides` are added to every job. One run folder per job, named by its overrides.
#
# Each finished run prints one line, and a run whose noise drowned the signal logs a warning (see
# [the private-run tutorial](private_run.html)); here the 22 runs' console output is kept aside and
# summarised: how many lines, the first of each kind.

# %%
console = io.StringIO()
with contextlib.redirect_stdout(console):  # what the runs print, kept aside
    runs = gnnrisk.sweep(["experiment=quick", "seed=0,1"], sweep_dir=OUT,
                         overrides=SMALL)
printed = console.getvalue().splitlines()
lines = [line for line in printed if line.startswith("finished ")]
warned = [line for line in printed if line.startswith("WARNING ")]
print(len(runs), "runs,", (runs["status"] == "finished").sum(), "finished")
print(f"{len(lines)} lines such as:", lines[0], sep="\n  ")
print(f"{len(warned)} warnings such as:", *warned[:1], sep="\n  ")
runs[["model", "mechanism", "seed", "epsilon", "test_auroc_true"]].head(6)

# %% [markdown]
# `runs` is the run table, one row per run folder, as `gnnrisk.report.load(OUT)` reads it back: the
# status, every config value as a `cfg.*` column, every metric of `metrics.json`.

# %%
assert len(runs) == 22 and (runs["status"] == "finished").all()
assert set(runs["privacy_unit"].dropna()) == {"edge", "node"}
assert len(lines) + len(warned) == len(printed) == 22 + len(warned)
assert all("the noise drowns the signal" in line for line in warned)

# %% [markdown]
# ## The summary and the paired differences
#
# `summarize` groups the runs that differ only by seed: mean, standard deviation and a 95% t-interval
# of each metric, and for each private group the difference to the non-private GCN of the same seed
# (same population, same split), which removes most of the between-seed variance. Here for the headline
# metric, `test_auroc_true`, alone (each metric of the list adds a column to both tables), and without
# the columns `privacy.epsilon` (the target; `epsilon` is what was spent) and `privacy_unit` (edge or node,
# in the plots' panels below), so that both tables fit the page.

# %%
summary = gnnrisk.report.summarize(runs, ["test_auroc_true"])  # the headline metric
table = gnnrisk.report.display_table(summary)
show_table(table.drop(columns=["privacy.epsilon", "privacy_unit"]))  # shown: the spent epsilon

# %%
paired = gnnrisk.report.paired_table(summary)
show_table(paired.drop(columns=["privacy_unit"]))

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
show(paths[0], "Test AUROC against the true outcome by spent epsilon, one line per "
     "mechanism with its 95% band, the non-private GCN and the MLP as dashed lines")

# %%
front = gnnrisk.report.plot_pareto(summary, "epsilon", "test_auroc_true", OUT)
show(front[0], "Test AUROC (true outcome) against spent epsilon for every setting, "
     "one panel per privacy unit, the Pareto front of best trade-offs joined")

# %%
assert all(p.is_file() for p in [*paths, *front])

# %% [markdown]
# The whole report of the folder, as `gnnrisk-report SWEEP_DIR` writes it (tables as CSV, Markdown and
# LaTeX, these plots as PNG and PDF, and with `html=True` one page with all of them):

# %%
report = gnnrisk.report.make_report(OUT)
print(sorted(p.name for p in report.written)[:8], "...")
