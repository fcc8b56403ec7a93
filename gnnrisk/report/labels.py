"""Words for the report's plot titles, axes and HTML table headers: metric keys and config keys as a reader says them.

One place for every label: `label("attack_linkteller_auroc")` -> "LinkTeller AUROC", `label("test_auroc_true")`
-> "test AUROC (true labels)", `label("model.name")` -> "model", `label("epsilon", units=["edge"])` ->
"spent ε (edge level)". Unknown keys get a readable fallback (`attack_foo_bar` -> "attack foo bar").
The CSV, Markdown and LaTeX tables keep the keys themselves (write-ups regenerated with `--into` stay the same).
"""

from __future__ import annotations

from collections.abc import Iterable

from gnnrisk.report.collect import CONFIG_PREFIX

TRUE_SUFFIX = "_true"
OBSERVED, TRUE = "(observed labels)", "(true labels)"

# Config keys (without `cfg.`) as words; `<group>.name` keys not listed here fall back to the group's name.
CONFIG_LABELS = {
    "model.name": "model",
    "privacy.name": "mechanism",
    "privacy.epsilon": "target ε",
    "privacy.delta": "target δ",
    "privacy.max_degree": "degree bound",
    "privacy.max_grad_norm": "clipping norm",
    "data.name": "dataset",
    "data.topology": "topology",
    "data.num_nodes": "nodes",
    "data.mean_degree": "mean degree",
    "data.num_communities": "communities",
    "data.mixing": "community mixing",
    "data.segregation": "group segregation",
    "data.triadic_closure": "triadic closure",
    "attack.name": "attack",
    "audit.name": "audit",
    "explain.name": "explainer",
    "train.epochs": "epochs",
    "train.lr": "learning rate",
    "model.hidden_channels": "hidden channels",
    "model.num_layers": "layers",
    "seed": "seed",
}
# Config key patterns with a group name at the end: `data.observation.detection_rate.minority`.
CONFIG_PATTERNS = {
    "data.observation.detection_rate.": "detection rate",
    "data.observation.false_report_rate.": "false report rate",
    "data.groups.": "group share",
}

# Metric keys with a fixed label (the `_true` variants follow from these).
METRIC_LABELS = {
    "epsilon": "spent ε",
    "delta": "spent δ",
    "target_epsilon": "target ε",
    "eps_lower": "ε lower bound (audit)",
    "train_seconds": "training time (s)",
    "best_epoch": "best epoch",
    "epochs": "epochs run",
    "num_nodes": "nodes",
    "num_edges": "edges",
    "delta_sp": "statistical-parity gap",
    "delta_eo": f"equal-opportunity gap {OBSERVED}",
    "delta_fpr": f"FPR gap {OBSERVED}",
    "ece": f"ECE {OBSERVED}",
    "decision_threshold": "decision threshold",
    "flip_prob": "edge flip probability",
    "noise_multiplier": "noise multiplier",
    "seed": "seed",
}
SPLITS = {"train": "train", "val": "validation", "test": "test"}
SCORES = {"acc": "accuracy", "auroc": "AUROC", "auprc": "AUPRC", "f1": "F1"}
# Per-group fairness keys `<rate>_<group>`: the rate's words and whether it depends on the labels.
GROUP_RATES = {"selection_rate": ("selection rate", False), "tpr": ("TPR", True), "fpr": ("FPR", True),
               "ece": ("ECE", True)}
# Attack and audit names inside `attack_<name>_<score>` keys (longest match first).
ATTACKS = {
    "linkteller": "LinkTeller",
    "lsa": "LSA attack-0",
    "mia": "membership inference",
    "explain_sim": "explanation-similarity attack",
    "canary_nodes": "node canary audit",
    "canary": "edge canary audit",
    "adjacency": "adjacency audit",
}
# What an attack key measures (token sequences, longest match first); the tokens left over qualify it.
ATTACK_SCORES = {
    "tpr_at_01fpr": "TPR at 0.1% FPR",
    "tpr_at_1fpr": "TPR at 1% FPR",
    "eps_lower": "ε lower bound",
    "query_seconds": "query time (s)",
    "audit_tp": "true positives",
    "audit_fp": "false positives",
    "audit_positives": "positive trials",
    "audit_negatives": "negative trials",
    "score_gap": "score gap",
    "true_edges": "true edges",
    "auroc": "AUROC",
    "gain": "AUROC gain over the MLP reference",
    "pairs": "scored pairs",
    "nodes": "nodes",
}
ATTACK_QUALIFIERS = {"mlp": "MLP reference", "k": "k", "div2": "k/2", "div4": "k/4", "x2": "2k", "x4": "4k"}
PRIVACY_UNITS = {"edge": "edge level", "node": "node level"}


def words(key: str) -> str:
    """The fallback: a key's parts as words (`attack_foo_bar` -> `attack foo bar`, `data.x_y` -> `data x y`)."""
    return " ".join(key.replace(".", " ").replace("_", " ").split())


def config_label(key: str) -> str:
    """A config path (`cfg.` prefix optional) as words: `model.name` -> model, else the path's parts as words."""
    key = key[len(CONFIG_PREFIX):] if key.startswith(CONFIG_PREFIX) else key
    if key in CONFIG_LABELS:
        return CONFIG_LABELS[key]
    for prefix, text in CONFIG_PATTERNS.items():
        if key.startswith(prefix) and "." not in key[len(prefix):]:
            return f"{text} ({words(key[len(prefix):])})"
    if key.endswith(".name"):
        return words(key[: -len(".name")])
    return words(key)


def _with_true(text: str) -> str:
    """A label against the observed labels turned into the same against the ground truth."""
    return text.replace(OBSERVED, TRUE) if OBSERVED in text else f"{text} {TRUE}"


def _attack_label(rest: str) -> str | None:
    """`<name>_<score>` of an `attack_` key in words, None when the attack name is unknown."""
    name = next((a for a in sorted(ATTACKS, key=len, reverse=True) if rest == a or rest.startswith(a + "_")), None)
    if name is None:
        return None
    tokens = rest[len(name) + 1:].split("_") if rest != name else []
    for score in sorted(ATTACK_SCORES, key=lambda s: -len(s.split("_"))):
        part = score.split("_")
        at = next((i for i in range(len(tokens) - len(part) + 1) if tokens[i:i + len(part)] == part), None)
        if at is None:
            continue
        left = tokens[:at] + tokens[at + len(part):]
        qualifier = ", ".join(ATTACK_QUALIFIERS.get(t, t) for t in left)
        if score == "eps_lower":
            return f"ε lower bound ({ATTACKS[name]}{', ' + qualifier if qualifier else ''})"
        return f"{ATTACKS[name]} {ATTACK_SCORES[score]}" + (f" ({qualifier})" if qualifier else "")
    if tokens[:2] in (["precision", "at"], ["recall", "at"]):  # precision_at_k_x2 -> precision at 2k
        guess = "_".join(tokens[2:]).replace("k_", "")
        return f"{ATTACKS[name]} {tokens[0]} at {ATTACK_QUALIFIERS.get(guess, words(guess))}"
    return f"{ATTACKS[name]} {words('_'.join(tokens))}".strip()


def metric_label(key: str) -> str:
    """A metrics.json key in words; `_true` variants say `(true labels)`, unknown keys their parts as words."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    if key.endswith(TRUE_SUFFIX) and len(key) > len(TRUE_SUFFIX):
        base = key[: -len(TRUE_SUFFIX)]
        known = metric_label(base)
        return _with_true(known) if known != words(base) else words(key)
    split, _, score = key.partition("_")
    if split in SPLITS and score in SCORES:
        return f"{SPLITS[split]} {SCORES[score]} {OBSERVED}"
    for rate, (text, by_label) in GROUP_RATES.items():
        if key.startswith(rate + "_") and len(key) > len(rate) + 1:
            return f"{text} of {words(key[len(rate) + 1:])}" + (f" {OBSERVED}" if by_label else "")
    if key.startswith("attack_"):
        found = _attack_label(key[len("attack_"):])
        if found is not None:
            return found
    return words(key)


def unit_text(units: Iterable[object]) -> str:
    """`edge level`, `node level`, `edge or node level` from privacy_unit values; empty without any."""
    named = sorted({u for u in units if isinstance(u, str) and u})
    return f"{' or '.join(named)} level" if named else ""


def label(key: str, units: Iterable[object] = ()) -> str:
    """Any name the report shows, in words: a config key (dotted, or `cfg.`-prefixed) or a metric key.

    `units`: the privacy_unit values of the rows a spent budget belongs to; `epsilon` then says
    `spent ε (edge level)` (or `(node level)`, or `(edge or node level)` when a plot mixes them).
    """
    if key.startswith(CONFIG_PREFIX) or "." in key or key in CONFIG_LABELS:
        return config_label(key)
    text = metric_label(key)
    if key in ("epsilon", "delta"):
        unit = unit_text(units)
        return f"{text} ({unit})" if unit else text
    return text


def is_attack_auroc(metric: str) -> bool:
    """Whether `metric` is an attack's or audit's AUROC (chance is 0.5), not a gain or a difference."""
    parts = metric.split("_")
    return parts[0] == "attack" and "auroc" in parts and "gain" not in parts


def true_counterpart(metric: str, available: Iterable[str]) -> str | None:
    """`<metric>_true` when it is among `available` (the same measure against the ground truth), else None."""
    if metric.endswith(TRUE_SUFFIX):
        return None
    other = metric + TRUE_SUFFIX
    return other if other in set(available) else None
