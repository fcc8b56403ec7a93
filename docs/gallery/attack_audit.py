# %% [markdown]
# # An attack and an audit
#
# A differential-privacy epsilon is an upper bound on what any attacker can learn about one tie. Two
# things can be measured against it: what a real attack recovers, and a **lower bound** on epsilon
# that an audit proves from the attack's successes (`eps_lower`): if the audit's bound ever exceeded
# the reported epsilon, the mechanism or its accounting would be wrong.
#
# Here: EdgeRand (randomized response on the adjacency matrix, edge-level DP) at five budgets, each run
# attacked by link stealing (`lsa`: He et al., USENIX Security 2021) and audited on the graph it
# released (`adjacency`: every pair among the sampled nodes is a trial). Then `eps_lower` against the
# spent epsilon. Background: the [attack page](../config/attack.html) and the
# [attacks study](../studies/attacks.html).
#
# A 300-node synthetic population, one seed; everything is written into a temporary folder
# (`GNNRISK_GALLERY_OUT` names another one).

# %%
import base64
import os
import tempfile
import warnings
from pathlib import Path

import gnnrisk
import gnnrisk.report

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
OUT = Path(os.environ.get("GNNRISK_GALLERY_OUT") or tempfile.mkdtemp(prefix="gnnrisk-gallery-")) / "attack_audit"
SMALL = ["data.num_nodes=300", "train.epochs=10", "threads=1"]
# Hydra's logging settings: the console shows warnings only, without date
# and time (each run's app.log keeps its timestamps).
SMALL += ["hydra.job_logging.root.level=WARNING",
          "+hydra.job_logging.formatters.brief.format='%(levelname)s %(name)s: %(message)s'",
          "hydra.job_logging.handlers.console.formatter=brief"]
EPSILONS = [0.5, 1, 2, 4, 8]


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
# ## The sweep
#
# `attack=[lsa,adjacency]` selects two members of the multi-select `attack` group; their settings live
# under `attack.<member>.`: here 500 attacked ties (and as many non-ties), and the audit over every
# pair among 300 nodes (all of them, at this size).

# %%
runs = gnnrisk.sweep({"privacy.epsilon": EPSILONS}, sweep_dir=OUT, overrides=[
    *SMALL, "privacy=edgerand", "attack=[lsa,adjacency]", "attack.lsa.num_pairs=500",
    "attack.adjacency.num_nodes=300"])
columns = ["attack_lsa_auroc", "attack_lsa_mlp_auroc", "eps_lower",
           "attack_adjacency_audit_tp", "attack_adjacency_audit_fp"]
runs.set_index("epsilon")[columns].round(3).astype(object).transpose()  # a column per epsilon

# %% [markdown]
# ## The attack
#
# `attack_lsa_auroc` is how well the released predictions tell a tie from a non-tie (0.5: not at all);
# `attack_lsa_mlp_auroc` is the same attack on a model that never saw a tie, so it measures what
# homophily alone gives away. An attack AUROC is not turned into a bound: features predict ties without
# any leakage, and many pairs scored against one model are not independent trials.

# %%
attack = ["attack_lsa_auroc", "attack_lsa_mlp_auroc", "attack_lsa_gain", "attack_lsa_best_distance"]
runs.set_index("epsilon")[attack].round(3).astype(object).transpose()

# %% [markdown]
# ## The audit: eps_lower against epsilon
#
# EdgeRand flips every cell of the adjacency matrix independently with probability 1/(e^epsilon + 1), so
# the audit's trials are independent and its guess ("a tie in the released graph means a tie in the
# input") has true and false positive rates in the ratio e^epsilon exactly. The bound
# `eps_lower = ln((TPR_lb - delta) / FPR_ub)`, from one-sided Clopper-Pearson bounds that hold together
# with 95% confidence, should come close to epsilon and never exceed it.

# %%
audit = ["eps_lower", "eps_lower_attack", "eps_lower_relation", "eps_lower_basis"]
print("eps_lower_trials:", *runs["eps_lower_trials"].unique(), sep="\n  ")
runs.set_index("epsilon")[audit].round(3).astype(object).transpose()

# %%
assert (runs["status"] == "finished").all() and len(runs) == len(EPSILONS)
assert (runs["eps_lower"] <= runs["epsilon"] + 1e-9).all()  # no bound above the guarantee
assert (runs["eps_lower"] > 0.5 * runs["epsilon"]).all()    # and a tight one: independent trials
assert set(runs["eps_lower_relation"]) == {"edge"}

# %% [markdown]
# The report draws `eps_lower` against the spent epsilon with the line eps_lower = epsilon: an audit
# point above the line would refute the guarantee.

# %%
summary = gnnrisk.report.summarize(runs, ["eps_lower", "attack_lsa_auroc"])
paths = gnnrisk.report.plot_metric_vs_x(summary, "eps_lower", "epsilon", OUT)
show(paths[0], "eps_lower, the audit's lower bound, against the spent epsilon for "
     "EdgeRand, with the line eps_lower = epsilon that no valid bound crosses")

# %% [markdown]
# The same audit against a model rather than a graph (GAP, DP-SGD) needs canaries: `attack=canary`
# inserts candidate ties at random and re-runs the mechanism; its bound is much looser, because one
# run's canaries share one model ([one-run auditing](../config/attack.html#the-epsilon-lower-bound)).
