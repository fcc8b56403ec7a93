"""DP-MLP (DP-SGD with Opacus per-sample gradients, on features only): reported privacy, noise vs epsilon, utility vs epsilon, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from opacus.accountants import RDPAccountant

from gnnrisk.errors import ConfigError
from gnnrisk.pipeline import run_experiment
from gnnrisk.privacy import accounting

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
SMALL = ["data.num_nodes=1500", "model=mlp"]


def _run(tmp_path: Path, *overrides: str) -> dict:
    """Run one experiment with `privacy=dp_mlp` on a small synthetic graph; return its metrics."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["privacy=dp_mlp", *SMALL, *overrides])
    return run_experiment(cfg, tmp_path)


def test_reported_privacy_matches_an_independent_recount(tmp_path):
    low = _run(tmp_path / "a", "privacy.epsilon=1", "privacy.epochs=3")
    high = _run(tmp_path / "b", "privacy.epsilon=8", "privacy.epochs=3")
    n_train = 750
    for m, target in ((low, 1.0), (high, 8.0)):
        assert m["mechanism"] == "dp_mlp" and m["privacy_unit"] == "node"
        assert 0.95 * target <= m["epsilon"] <= target  # calibrated on integer orders: within a few %
        assert m["delta"] == pytest.approx(1 / (10 * n_train))
        # Poisson rate q = B / n, round(1 / q) = 3 steps per epoch (gap_dpsgd.poisson_schedule)
        assert m["sample_rate"] == pytest.approx(256 / 750) and m["steps"] == 3 * 3
        assert m["max_grad_norm"] == 1.0
        # The same steps, recounted with a fresh Opacus RDP accountant and with ours.
        fresh = RDPAccountant()
        fresh.history = [(m["noise_multiplier"], m["sample_rate"], m["steps"])]
        assert fresh.get_epsilon(m["delta"], alphas=list(accounting.ORDERS)) == pytest.approx(m["epsilon"])
        ours = accounting.epsilon_from_rdp(accounting.rdp_subsampled_gaussian(
            m["noise_multiplier"], m["sample_rate"], m["steps"]), m["delta"])
        assert ours == pytest.approx(m["epsilon"])
    assert low["noise_multiplier"] > high["noise_multiplier"] > 0.3


def test_explicit_delta_is_used(tmp_path):
    m = _run(tmp_path, "privacy.delta=1e-3", "privacy.epochs=2")
    assert m["delta"] == 1e-3 and m["epsilon"] <= 8.0


@pytest.mark.slow
def test_utility_rises_with_epsilon(tmp_path):
    def mean_auroc(eps: float) -> float:
        runs = [_run(tmp_path / f"{eps}-{s}", f"privacy.epsilon={eps}", f"seed={s}") for s in range(3)]
        return sum(r["test_auroc"] for r in runs) / 3
    assert mean_auroc(8.0) > mean_auroc(0.1) + 0.02


def test_same_seed_same_numbers(tmp_path):
    a = _run(tmp_path / "a", "privacy.epochs=2")
    b = _run(tmp_path / "b", "privacy.epochs=2")
    assert a["test_auroc"] == b["test_auroc"] and a["epsilon"] == b["epsilon"]


@pytest.mark.parametrize("override,field", [
    ("privacy.epsilon=0", "privacy.epsilon"), ("privacy.epsilon=-2", "privacy.epsilon"),
    ("privacy.epsilon=abc", "privacy.epsilon"), ("privacy.delta=0", "privacy.delta"),
    ("privacy.delta=1", "privacy.delta"), ("model=gcn", "model.name"), ("model=sage", "model.name"),
    ("model.norm=batch_norm", "model.norm"), ("privacy.max_grad_norm=0", "privacy.max_grad_norm"),
])
def test_bad_input_names_the_field(tmp_path, override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        _run(tmp_path, override)


def test_unreachable_epsilon_names_epsilon_and_epochs(tmp_path):
    with pytest.raises(ConfigError, match=r"privacy\.epsilon.*privacy\.epochs=2000"):
        _run(tmp_path, "privacy.epsilon=0.001", "privacy.epochs=2000")
