"""The RDP accountant: cross-checked against Google's independent `dp_accounting` package."""

from __future__ import annotations

import dp_accounting as dpa
import numpy as np
import pytest

from gnnrisk.errors import ConfigError
from gnnrisk.privacy import accounting as acc


def _google_epsilon(event: dpa.DpEvent, delta: float,
                    relation: dpa.NeighboringRelation = dpa.NeighboringRelation.ADD_OR_REMOVE_ONE) -> float:
    """Epsilon of `event` by dp_accounting's RDP accountant over the same orders."""
    accountant = dpa.rdp.RdpAccountant(list(acc.ORDERS), relation)
    accountant.compose(event)
    return accountant.get_epsilon(delta)


def test_subsampled_gaussian_matches_design_example_and_dp_accounting():
    ours = acc.epsilon_from_rdp(acc.rdp_subsampled_gaussian(1.0, 0.0256, 390), 1e-5)
    google = _google_epsilon(dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(0.0256, dpa.GaussianDpEvent(1.0)),
                                                     390), 1e-5)
    assert ours == pytest.approx(3.634, abs=0.01)  # DESIGN.md section 4
    assert ours == pytest.approx(google, rel=0.01)


@pytest.mark.parametrize("sigma,q,steps", [(0.8, 0.01, 1000), (2.0, 0.1, 200), (5.0, 1.0, 10)])
def test_subsampled_gaussian_matches_dp_accounting_elsewhere(sigma, q, steps):
    ours = acc.epsilon_from_rdp(acc.rdp_subsampled_gaussian(sigma, q, steps), 1e-6)
    google = _google_epsilon(dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)),
                                                     steps), 1e-6)
    assert ours == pytest.approx(google, rel=0.01)


@pytest.mark.parametrize("std,sensitivity,steps", [(5.0, 1.0, 3), (2.0, 3.0, 1), (10.0, 2.0, 20)])
def test_plain_gaussian_matches_dp_accounting(std, sensitivity, steps):
    ours = acc.epsilon_from_rdp(acc.rdp_gaussian(std, sensitivity, steps), 1e-5)
    google = _google_epsilon(dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(std / sensitivity), steps), 1e-5)
    assert ours == pytest.approx(google, rel=0.01)


def test_composition_of_heterogeneous_mechanisms_matches_dp_accounting():
    curve = acc.compose(acc.rdp_gaussian(4.0, 1.0, steps=2), acc.rdp_subsampled_gaussian(1.1, 0.02, 300))
    google = _google_epsilon(dpa.ComposedDpEvent([
        dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(4.0), 2),
        dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(0.02, dpa.GaussianDpEvent(1.1)), 300)]), 1e-5)
    eps = acc.epsilon_from_rdp(curve, 1e-5)
    assert eps == pytest.approx(google, rel=0.01)
    assert eps > acc.epsilon_from_rdp(acc.rdp_gaussian(4.0, 1.0, steps=2), 1e-5)


def test_occurrences_bound():
    assert acc.occurrences_bound(10, 1) == 11
    assert acc.occurrences_bound(10, 2) == 111
    assert acc.occurrences_bound(3, 0) == 1


def _node_eps(sigma=2.0, n=2000, batch=100, degree=5, hops=2, steps=200, delta=1e-5) -> float:
    return acc.epsilon_from_rdp(acc.rdp_node_dpsgd(sigma, n, batch, degree, hops, steps), delta)


def test_node_bound_is_at_least_the_example_level_epsilon():
    # Example-level baselines with the same noise and sampling: Poisson add/remove (Opacus), and
    # fixed-size sampling without replacement under replace-one (dp_accounting, Wang et al. 2019).
    n, batch, sigma, steps = 2000, 100, 2.0, 200
    poisson = acc.epsilon_from_rdp(acc.rdp_subsampled_gaussian(sigma, batch / n, steps), 1e-5)
    without = _google_epsilon(dpa.SelfComposedDpEvent(
        dpa.SampledWithoutReplacementDpEvent(n, batch, dpa.GaussianDpEvent(sigma)), steps), 1e-5,
        dpa.NeighboringRelation.REPLACE_ONE)
    for degree in (1, 3, 10):
        node = _node_eps(sigma, n, batch, degree, 1, steps)
        assert node >= poisson and node >= without


def test_node_bound_with_the_whole_batch_affected_is_the_plain_gaussian():
    # n = batch: every step contains all N examples of the node: Gaussian with sensitivity 2N C.
    curve = acc.rdp_node_dpsgd(30.0, num_examples=50, batch_size=50, max_degree=3, num_hops=1, steps=7)
    assert np.allclose(curve, acc.rdp_gaussian(30.0, 2 * 4, steps=7))


def test_node_bound_monotone():
    base = _node_eps()
    assert _node_eps(degree=7) > base and _node_eps(degree=3) < base
    assert _node_eps(hops=3) > base and _node_eps(hops=1) < base
    assert _node_eps(steps=400) > base and _node_eps(steps=100) < base
    assert _node_eps(sigma=3.0) < base < _node_eps(sigma=1.5)


def test_calibrate_noise_spends_at_most_the_target_and_close_to_it():
    orders = acc.INTEGER_ORDERS  # the cheap orders keep this test fast
    fn = lambda s: acc.epsilon_from_rdp(acc.rdp_subsampled_gaussian(s, 0.01, 1000, orders), 1e-5, orders)  # noqa: E731
    for target in (0.5, 1.0, 4.0, 8.0):
        sigma, spent = acc.calibrate_noise(target, 1e-5, fn)
        assert spent <= target and spent >= 0.98 * target
        assert spent == fn(sigma)
    assert acc.calibrate_noise(1.0, 1e-5, fn)[0] > acc.calibrate_noise(8.0, 1e-5, fn)[0] > 0


def test_calibrate_noise_unreachable_names_the_field_and_steps():
    fn = lambda s: _node_eps(sigma=s, steps=10_000)  # noqa: E731
    with pytest.raises(ConfigError, match=r"privacy\.epsilon.*privacy\.epochs=500"):
        acc.calibrate_noise(1e-3, 1e-5, fn, context="with privacy.epochs=500")
