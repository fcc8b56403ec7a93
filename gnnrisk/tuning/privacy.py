"""The privacy fields of a trial's run and the privacy cost of selecting the best of the study's releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from gnnrisk.results import METRICS_FILE

PRIVACY_FIELDS = ("mechanism", "privacy_unit", "epsilon", "delta")


def run_privacy(run_dir: Path) -> dict[str, Any]:
    """The privacy fields of a finished run (metrics.json), empty when it has none."""
    from gnnrisk.results import load_json_object

    metrics = load_json_object(run_dir / METRICS_FILE)[0] if (run_dir / METRICS_FILE).exists() else None
    if not metrics:
        return {}
    from gnnrisk.private_selection import CURVE_FIELDS  # what a private selection rebuilds a trial's curve from

    return {k: metrics.get(k) for k in (*PRIVACY_FIELDS, "privacy_unit_detail", *CURVE_FIELDS)}


def selection_privacy(releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What selecting among these releases (one per distinct run folder whose score was seen) costs.

    The selected run's epsilon covers that one trial. Under an edge-level relation the labels are public,
    so each score is post-processing of its trial's release and the selection, a function of all of
    them, costs at most the sums of epsilon and delta (basic composition). Under a node-level relation
    the validation labels are private and the scores read them outside every mechanism: no epsilon
    covers the selection (selection_bounded false; the models' own sum is still given). A non-private
    trial among private ones, or trials under different relations, leave no finite bound either.
    """
    private = [r for r in releases if r.get("epsilon") is not None]
    out: dict[str, Any] = {"selection_private": bool(private), "selection_releases": len(releases)}
    if not private:
        return {**out, "privacy_unit": None, "selection_relation": None, "epsilon_per_trial": None,
                "selection_epsilon_upper": None, "selection_delta_upper": None, "selection_bounded": None,
                "models_epsilon_sum": None, "models_delta_sum": None, "selection_reads_private_labels": False,
                "selection_note": None}
    units = sorted({str(r.get("privacy_unit")) for r in private})
    details = sorted({str(r["privacy_unit_detail"]) for r in private if r.get("privacy_unit_detail")})
    one_relation = len(units) == 1 and len(private) == len(releases)
    relation = f"{units[0]}-level" + (f" ({'; '.join(details)})" if details else "") if len(units) == 1 else None
    reads_labels = "node" in units
    bounded = one_relation and not reads_labels
    eps_sum = sum(float(r["epsilon"]) for r in private)
    delta_sum = sum(float(r.get("delta") or 0.0) for r in private)
    per_trial = max(float(r["epsilon"]) for r in private)
    out.update({
        "privacy_unit": units[0] if len(units) == 1 else "mixed",
        "selection_relation": relation,
        "epsilon_per_trial": per_trial,
        "selection_epsilon_upper": eps_sum if bounded else None,
        "selection_delta_upper": delta_sum if bounded else None,
        "selection_bounded": bounded,
        "models_epsilon_sum": eps_sum if one_relation else None,
        "models_delta_sum": delta_sum if one_relation else None,
        "selection_reads_private_labels": reads_labels,
    })
    trials = f"{len(releases)} private trials" if len(private) == len(releases) else \
        f"{len(releases)} trials ({len(private)} private)"
    head = (f"the selection of the best of {trials} is itself a release that no run's "
            f"epsilon ({per_trial:g} per trial at most) covers")
    if bounded:
        out["selection_note"] = (f"{head}; by basic composition over every trial it costs at most epsilon "
                                 f"{eps_sum:g}, delta {delta_sum:g} ({relation})")
    elif len(private) < len(releases):
        out["selection_note"] = (f"{head}, and {len(releases) - len(private)} non-private trial(s) took part: "
                                 "the selection has no finite privacy bound")
    elif len(units) > 1:
        out["selection_note"] = (f"{head}; the trials protect different neighbouring relations ({', '.join(units)}): "
                                 "no single bound")
    else:
        out["selection_note"] = (
            f"{head}; under node-level DP the validation labels are private and every trial's score reads them "
            f"outside the mechanism, so the selection has no finite privacy bound (the {len(releases)} models "
            f"alone compose to epsilon {eps_sum:g}, delta {delta_sum:g}; {relation})")
    return out
