"""The membership-inference headline: the attack chosen on one half of the nodes, reported on the other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrisk.attack.membership import held_out_headline, selection_halves
from gnnrisk.attack.scores import auroc


def test_halves_are_stratified_and_seeded():
    """Half of the members and half of the non-members choose; the same generator seed, the same halves."""
    labels = torch.tensor([True] * 40 + [False] * 40)
    a = selection_halves(labels, torch.Generator().manual_seed(1))
    b = selection_halves(labels, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and int(a[:40].sum()) == 20 and int(a[40:].sum()) == 20


@pytest.mark.slow
def test_held_out_headline_is_unbiased_where_best_of_three_is_not():
    """Three attacks that know nothing: over 300 trials the best-of-three AUROC on all nodes averages well
    above 0.5 (selection bias), the held-out headline averages 0.5 within its standard error."""
    rng = np.random.default_rng(0)
    labels = torch.tensor([True] * 50 + [False] * 50)
    y = labels.numpy()
    held, best = [], []
    for trial in range(300):
        scores = {name: rng.normal(size=100) for name in ("confidence", "loss", "shadow")}
        held.append(held_out_headline(labels, scores, torch.Generator().manual_seed(trial))["attack_mia_auroc"])
        best.append(max(auroc(y, s) for s in scores.values()))
    held, best = np.array(held), np.array(best)
    se = held.std(ddof=1) / np.sqrt(held.size)
    assert abs(held.mean() - 0.5) < 3 * se
    assert best.mean() - 0.5 > 10 * best.std(ddof=1) / np.sqrt(best.size)


def test_a_real_signal_is_chosen_and_reported_on_the_other_half():
    """One informative attack among noise: it is chosen, and its held-out AUROC is high."""
    rng = np.random.default_rng(1)
    labels = torch.tensor([True] * 100 + [False] * 100)
    scores = {"confidence": rng.normal(size=200), "loss": labels.numpy() * 2.0 + rng.normal(size=200),
              "shadow": rng.normal(size=200)}
    out = held_out_headline(labels, scores, torch.Generator().manual_seed(0))
    assert out["attack_mia_attack"] == "loss" and out["attack_mia_auroc"] > 0.85
    assert out["attack_mia_heldout_nodes"] == 100
