"""`preset`: named size presets. `preset=tiny` caps every size so that any command runs in seconds.

A preset is for trying commands (a first look, a tutorial, the documentation's own tests), never for
results: a run made with one says so in its config.yaml (`preset: tiny`) and its metrics.json (`preset`).
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from gnnrisk.errors import check_choice

# Sizes capped by `preset=tiny` (key, at most): a value above its cap is lowered, a smaller one kept, a key the
# composed config does not have (a group not chosen) skipped.
TINY_CAPS: tuple[tuple[str, int], ...] = (
    ("train.epochs", 10), ("data.num_nodes", 300), ("data.num_people", 1000), ("data.num_communities", 6),
    ("data.base_nodes", 60),
    ("data.num_motifs", 10), ("explain.num_nodes", 5), ("explain.epochs", 2), ("explain.train_nodes", 4),
    ("explain.n_steps", 4), ("audit.rounds", 2), ("audit.epochs", 2), ("attack.lsa.num_pairs", 100),
    ("attack.linkteller.num_nodes", 40), ("attack.linkteller.num_pairs", 200), ("attack.adjacency.num_nodes", 60),
    ("attack.canary.num_canaries", 20), ("attack.canary_nodes.num_canaries", 20),
    ("attack.explain_sim.num_pairs", 20), ("privacy.epochs", 2), ("privacy.encoder_epochs", 2),
    ("privacy.classifier_epochs", 2), ("privacy.batch_size", 64), ("privacy.steps", 2), ("eval.origins", 1),
)
PRESETS = ("tiny",)


def preset_of(cfg: DictConfig) -> str | None:
    """`preset`: null (the sizes as configured) or one of PRESETS (ConfigError otherwise)."""
    name = cfg.get("preset")
    return None if name is None else check_choice("preset", name, PRESETS)


def apply_preset(cfg: DictConfig) -> DictConfig:
    """The config with its preset applied (a copy; `cfg` itself when there is none).

    `tiny`: the sizes of TINY_CAPS capped, and explanations drawn from every node of either class (a model
    trained for a few epochs may predict no positive test node).
    """
    if preset_of(cfg) is None:
        return cfg
    out = cfg.copy()
    with open_dict(out):
        for key, cap in TINY_CAPS:
            value = OmegaConf.select(out, key)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                OmegaConf.update(out, key, cap)
        explain = out.get("explain")
        if explain is not None and explain.get("name", "none") != "none" and "split" in explain:
            explain.split = "all"
            if out.data.get("name") == "synthetic":  # binary labels: sample either predicted class
                explain.classes = [0, 1]
    return out
