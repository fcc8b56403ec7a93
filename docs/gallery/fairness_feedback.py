# %% [markdown]
# # Fairness and the feedback loop
#
# The synthetic population records outcomes with a bias: an incident of the minority group is detected
# with probability 0.9, one of the majority with 0.5, while the true outcome is built not to depend on
# the group (the realised rates differ by chance, through contagion over ties). A model trained on the
# record learns the record. Two audits show it:
#
# - `audit=fairness` compares the model's predictions by group against the **record** and against the
#   **truth**, which only a synthetic world knows, and splits the disparity against the truth into what
#   the record injected and what the model added;
# - `audit=feedback` lets the model's own scores decide where attention goes, round after round, and
#   records only what attention finds (Ensign et al., "Runaway Feedback Loops in Predictive Policing",
#   FAT* 2018): without a correction, attention follows the biased record rather than the truth, and what
#   attention finds becomes the next round's record.
#
# Background: the [audit page](../config/audit.html) and the
# [privacy and fairness study](../studies/privacy_fairness.html). A 300-node population and few epochs and
# rounds, so each run takes seconds; the numbers are noisy at this size, the reading is not. Everything
# is written into a temporary folder (`GNNRISK_GALLERY_OUT` names another one).

# %%
import base64
import math
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd

import gnnrisk

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
OUT = Path(os.environ.get("GNNRISK_GALLERY_OUT") or tempfile.mkdtemp(prefix="gnnrisk-gallery-")) / "fairness_feedback"
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


# %% [markdown]
# ## The fairness audit
#
# One GCN on the default population with `audit=fairness` (on the test split). Base rates by group,
# against the record and against the truth, and the detection rate the record had in each group:

# %%
fair = gnnrisk.run([*SMALL, "audit=fairness"], run_dir=OUT / "fairness")
m = fair.metrics
pd.DataFrame({group: {"base rate (record)": m[f"base_rate_{group}"],
                      "base rate (truth)": m[f"base_rate_{group}_true"],
                      "detection rate": m[f"detection_rate_{group}"]}
              for group in ("majority", "minority")})

# %% [markdown]
# The disparity the model shows against the truth is what the record injected plus what the model
# added: `bias_amplification_true = bias_amplification + record_bias`. `record_bias` is the gap the
# biased observation put into the labels; `bias_amplification` is the model's own gap beyond the record.

# %%
parts = {k: m[k] for k in ("record_bias", "bias_amplification", "bias_amplification_true")}
print(parts)
assert math.isclose(parts["bias_amplification_true"], parts["bias_amplification"] + parts["record_bias"],
                    abs_tol=1e-9)
assert m["detection_rate_minority"] > m["detection_rate_majority"]  # the record's bias, measured

# %% [markdown]
# The run also draws a reliability diagram per group: how well the predicted risk matches the observed
# rate, against the record and against the truth.

# %%
show(fair.run_dir / "reliability.png", "Reliability diagram per group: observed rate "
     "against predicted risk, against the record and against the truth, with the "
     "number of nodes per bin")

# %% [markdown]
# ## The feedback loop
#
# Three runs of the same deployment, five rounds each: attention (10% of the nodes per round) goes to the
# top-scored nodes with no correction (`none`), with Ensign et al.'s inverse-propensity correction
# (`ipw`), or uniformly at random (`random`, the baseline). `data.features.proxy_strength=3` makes the
# group visible through the features, as a postcode would. A logistic learner on the features keeps the
# rounds fast.

# %%
loop = gnnrisk.sweep({"audit.mode": ["none", "ipw", "random"]}, sweep_dir=OUT / "feedback", overrides=[
    *SMALL, "audit=feedback", "audit.rounds=5", "audit.learner=logistic", "data.features.proxy_strength=3"])
share_columns = ["feedback_population_share_minority", "feedback_true_share_minority",
                 "feedback_attention_share_minority_first", "feedback_attention_share_minority_final"]
loop.set_index("feedback_mode")[share_columns].round(3).transpose()  # a column per mode

# %% [markdown]
# `feedback_true_share_minority` is the minority's share of the true incidents, the share attention
# would get if it followed the truth; the `attention_share` columns are what it got in the first and
# the last round. Five rounds on 300 nodes make these numbers noisy: the
# [study](../studies/privacy_fairness.html#1-feedback-loop-equal-true-rates-biased-initial-record) runs ten
# rounds on 2000 nodes and five seeds, where the uncorrected loop sends about half of the attention to a
# group holding 30% of the true incidents and the correction brings it back to the truth.
#
# Each run writes its rounds to `feedback.csv` (per round and group: attention share, observed rate,
# record rate, mean score, and the AUROC against the truth) and draws them in `feedback.png`:

# %%
folders = {mode: OUT / "feedback" / run for mode, run in zip(loop["feedback_mode"], loop["run"])}
rounds = pd.read_csv(folders["none"] / "feedback.csv")
rounds.drop(columns="mode").set_index("round").round(3).astype(object).transpose()  # a column per round

# %%
show(folders["none"] / "feedback.png", "The uncorrected loop (mode none) over five "
     "rounds: attention share per group against its share of true incidents, "
     "recorded against true positive rate per group, and AUROC against the truth")

# %%
show(folders["ipw"] / "feedback.png", "The corrected loop (mode ipw) over five "
     "rounds: attention share per group against its share of true incidents, "
     "recorded against true positive rate per group, and AUROC against the truth")

# %%
assert (loop["status"] == "finished").all() and len(loop) == 3
for mode, folder in folders.items():
    assert (folder / "feedback.csv").is_file() and (folder / "feedback.png").is_file(), mode
shares = loop[["feedback_attention_share_minority_final", "feedback_attention_share_majority_final"]].sum(axis=1)
assert ((shares - 1).abs() < 1e-6).all()  # attention is split between the two groups
