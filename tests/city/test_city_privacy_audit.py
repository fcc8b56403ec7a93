"""Empirical epsilon on the city (gnnrisk.privacy.city.audit): a correct mechanism's eps_lower stays at or below its
claim, the same mechanism with the noise off goes above it, per audited unit and mechanism; bad inputs refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnnrisk.data.city.world import generate_city
from gnnrisk.errors import ConfigError
from gnnrisk.privacy.city.audit import (
    broken,
    gaussian_epsilon,
    hetero_gap_noise,
    incident_canary_audit,
    person_canary_audit,
    relation_canary_audit,
)
from gnnrisk.privacy.city.audit_canaries import aggregation_scores
from gnnrisk.privacy.city.mechanisms import build_city_mechanism

EPS = 1.0  # below the ceiling of these canary counts, so that a broken mechanism can be caught


@pytest.fixture(scope="module")
def city():
    return generate_city({"num_people": 400}, seed=0)


def _graph(name: str, relation: str):
    return build_city_mechanism({"name": name, "epsilon": EPS, "delta": 0.0, "max_edges": 10**7,
                                 "relation": relation})


def _gap(unit: str, epsilon: float = EPS):
    return build_city_mechanism({"name": "hetero_gap", "unit": unit, "epsilon": epsilon})


CASES = [  # (id, mechanism factory, audit, canaries)
    ("edgerand-knows", lambda: _graph("edgerand", "knows"), relation_canary_audit, 180),
    ("edgerand-lives_at", lambda: _graph("edgerand", "lives_at"), relation_canary_audit, 300),
    ("lapgraph-knows", lambda: _graph("lapgraph", "knows"), relation_canary_audit, 180),
    ("lapgraph-frequents", lambda: _graph("lapgraph", "frequents"), relation_canary_audit, 300),
    ("gap-edge:knows", lambda: _gap("edge:knows"), relation_canary_audit, 180),
    ("gap-edge:frequents", lambda: _gap("edge:frequents"), relation_canary_audit, 300),
    ("gap-person", lambda: _gap("person"), person_canary_audit, 300),
    ("gap-incident", lambda: _gap("incident"), incident_canary_audit, 300),
]


@pytest.mark.parametrize("make, audit, count", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_correct_below_claim_broken_above(city, make, audit, count):
    mech = make()
    ok = audit(city, mech, count, seed=0)
    bad = audit(city, broken(mech), count, seed=0)
    assert ok["eps_lower"] <= ok["claimed_epsilon"] + 1e-9, ok
    assert bad["eps_lower"] > bad["claimed_epsilon"], bad
    assert bad["mechanism"].endswith("(broken)") and bad["claimed_epsilon"] == ok["claimed_epsilon"]
    assert ok["basis"] == "dependent" and ok["canaries"] == count
    assert ok["positives"] + ok["negatives"] == count - count // 2 and 0 < ok["included"] < count
    assert bad["eps_lower"] <= bad["eps_ceiling"] + 1e-9
    assert ok["epsilon_exact"] <= ok["claimed_epsilon"] + 1e-6


def test_audit_is_seeded(city):
    mech = _gap("edge:knows", 16.0)
    a, b = relation_canary_audit(city, mech, 150, seed=3), relation_canary_audit(city, mech, 150, seed=3)
    assert a["eps_lower"] == b["eps_lower"] and a["tp"] == b["tp"] and a["fp"] == b["fp"]


def test_run_mode_compares_to_the_composed_epsilon(city):
    mech = _gap("incident", 4.0)
    release, run = hetero_gap_noise(mech, city, "release"), hetero_gap_noise(mech, city, "run")
    assert release["claimed_epsilon"] == pytest.approx(4.0, rel=0.01)
    assert run["claimed_epsilon"] == pytest.approx(4.0, rel=0.01)
    # the run composes T K releases and the head: more noise per release, far less epsilon per release
    assert run["noise_multiplier"] > release["noise_multiplier"]
    assert run["epsilon_release"] < run["claimed_epsilon"] / 3
    out = incident_canary_audit(city, mech, 200, seed=0, mode="run")
    assert out["mode"] == "run" and out["eps_lower"] <= out["claimed_epsilon"]
    assert "composed" in out["claimed"]


def test_gaussian_epsilon_matches_known_values():
    # mu = 1 at delta = 1e-5: the analytic Gaussian mechanism spends about 4.4 (Balle and Wang 2018)
    assert gaussian_epsilon(1.0, 1e-5) == pytest.approx(4.38, abs=0.05)
    assert 0.0 < gaussian_epsilon(0.01, 1e-5) < 0.05 and gaussian_epsilon(0.0, 1e-5) == 0.0
    assert gaussian_epsilon(2.0, 1e-5) > gaussian_epsilon(1.0, 1e-5)


def test_noise_free_scores_recover_the_coins():
    """Least squares over a row shared by canaries recovers each coin exactly without noise."""
    g = torch.Generator().manual_seed(0)
    cols = [torch.randn(8, generator=g) for _ in range(3)]
    coins = np.array([True, False, True])
    rel = ("person", "knows", "person")
    base = {rel: torch.zeros(1, 8)}
    release = {rel: (cols[0] + cols[2]).unsqueeze(0)}
    score, weight = aggregation_scores(release, base, {(rel, 0): dict(enumerate(cols))}, 3)
    assert np.allclose(score[coins], weight[coins], rtol=1e-5) and np.allclose(score[~coins], 0.0, atol=1e-5)


# --- refusals -----------------------------------------------------------------------------------------------------

def _refused(call) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        call()
    assert "\n" not in str(err.value)
    return err.value


@pytest.mark.parametrize("count", [1, 0, -3, 2.5, True])
def test_too_few_canaries_refused(city, count):
    err = _refused(lambda: relation_canary_audit(city, _graph("edgerand", "knows"), count, 0))
    assert err.field == "audit.num_canaries" and ">= 2" in str(err)


def test_too_many_canaries_refused(city):
    err = _refused(lambda: relation_canary_audit(city, _graph("edgerand", "knows"), 201, 0))
    assert err.field == "audit.num_canaries" and "node-disjoint" in str(err)
    err = _refused(lambda: relation_canary_audit(city, _gap("edge:lives_at"), 401, 0))
    assert "at most 400" in str(err)
    assert "at most 400" in str(_refused(lambda: person_canary_audit(city, _gap("person"), 401, 0)))
    assert "at most 400" in str(_refused(lambda: incident_canary_audit(city, _gap("incident"), 10**4, 0)))


@pytest.mark.parametrize("audit, mech", [
    (relation_canary_audit, lambda: _gap("person")),
    (relation_canary_audit, lambda: _gap("incident")),
    (relation_canary_audit, lambda: build_city_mechanism({"name": "none"})),
    (person_canary_audit, lambda: _gap("edge:knows")),
    (person_canary_audit, lambda: _graph("edgerand", "knows")),
    (incident_canary_audit, lambda: _gap("person")),
])
def test_unsupported_unit_refused(city, audit, mech):
    err = _refused(lambda: audit(city, mech(), 20, 0))
    assert err.field == "audit.unit" and "audits" in str(err)


def test_bad_mode_and_unbreakable_refused(city):
    err = _refused(lambda: relation_canary_audit(city, _gap("edge:knows"), 20, 0, mode="total"))
    assert err.field == "audit.mode"
    assert _refused(lambda: broken(build_city_mechanism({"name": "none"}))).field == "audit.mechanism"
    err = _refused(lambda: relation_canary_audit(city, _gap("edge:knows", math.inf), 20, 0))
    assert err.field == "privacy.epsilon"
