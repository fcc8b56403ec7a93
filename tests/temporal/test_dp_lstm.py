"""Node-level DP-SGD across periods (privacy=dp_mlp on data with periods): the accountant composes over
origins, per-node gradients, the clipping bound, refusals, the run's metrics and where its curves go."""

from __future__ import annotations

import json

import dp_accounting as dpa
import pytest
import torch
import torch.nn.functional as F
from dp_accounting.pld import pld_privacy_accountant as pld
from dp_accounting.rdp import rdp_privacy_accountant as rdp
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from opacus.accountants import RDPAccountant

from gnnrisk.data import build_dataset
from gnnrisk.errors import ConfigError
from gnnrisk.models import build_forecaster
from gnnrisk.models.recurrent import PeriodGraph
from gnnrisk.pipeline import run_experiment
from gnnrisk.privacy import accounting, build_mechanism
from gnnrisk.privacy.dp_mlp import calibrate_forecast_noise, example_forward, forecast_rdp, node_gradients
from gnnrisk.privacy.dpsgd_node import clip_sum_noise
from gnnrisk.train.forecast import IGNORE, validate_window
from tests_data_helpers import CONFIGS, temporal_cfg

DP = {"name": "dp_mlp", "epsilon": 4.0, "delta": None, "max_grad_norm": 1.0, "batch_size": 32, "epochs": 2,
      "lr": 0.01, "diagnostics": True}
MODELS = {"lstm": {"name": "lstm", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0},
          "mlp": {"name": "mlp", "hidden_channels": 8, "num_layers": 2, "dropout": 0.0, "input_dropout": 0.0,
                  "act": "relu", "norm": None}}


# --- the accountant ------------------------------------------------------------------------------

@pytest.mark.slow
def test_origins_compose():
    sigma, q, steps, delta = 1.5, 0.1, 50, 1e-5
    one, three = (accounting.epsilon_from_rdp(forecast_rdp(sigma, q, steps, k), delta) for k in (1, 3))
    assert three > one
    # three fresh models on the same people = one accountant that saw all their steps
    assert three == pytest.approx(accounting.epsilon_from_rdp(
        accounting.rdp_subsampled_gaussian(sigma, q, 3 * steps), delta))
    # the same target over more origins needs more noise
    assert (calibrate_forecast_noise(4.0, delta, q, steps, 3, "") > calibrate_forecast_noise(4.0, delta, q, steps, 1, ""))


@pytest.mark.slow
@pytest.mark.parametrize("target,origins", [(1.0, 3), (4.0, 3), (16.0, 5)])
def test_calibrated_total_meets_the_target_and_matches_other_accountants(target, origins):
    q, steps, delta = 0.1, 20, 1e-5
    sigma = calibrate_forecast_noise(target, delta, q, steps, origins, "")
    ours = accounting.epsilon_from_rdp(forecast_rdp(sigma, q, steps, origins), delta)
    assert 0.99 * target <= ours <= target
    # Opacus's RDP accountant, one history entry per origin
    fresh = RDPAccountant()
    fresh.history = [(sigma, q, steps)] * origins
    assert fresh.get_epsilon(delta, alphas=list(accounting.ORDERS)) == pytest.approx(ours, rel=1e-6)
    # dp-accounting's RDP accountant, the same Poisson-subsampled Gaussian steps, its own orders
    event = dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma))
    theirs = rdp.RdpAccountant()
    theirs.compose(event, steps * origins)
    assert theirs.get_epsilon(delta) == pytest.approx(ours, rel=0.01)
    # and a tight PLD accountant: RDP is an upper bound, never below it
    tight = pld.PLDAccountant(value_discretization_interval=1e-3)
    tight.compose(event, steps * origins)
    assert tight.get_epsilon(delta) <= ours


# --- per-node gradients and clipping -------------------------------------------------------------

def _model_and_batch(name: str, nodes: int = 7, periods: int = 6, seed: int = 0):
    torch.manual_seed(seed)
    cfg = OmegaConf.create(MODELS[name])
    model = build_forecaster(cfg, 5, 2 * 2)  # two horizons, two classes
    xs = torch.randn(periods, nodes, 5)
    targets = torch.randint(0, 2, (nodes, periods, 2))
    targets[:, periods - 1:, 0] = IGNORE  # as in a window: horizon 1 ends a period early, horizon 2 two
    targets[:, periods - 2:, 1] = IGNORE
    graphs = [PeriodGraph(torch.empty(2, 0, dtype=torch.long), nodes) for _ in range(periods)]
    return cfg, model, xs, targets, graphs


@pytest.mark.parametrize("name", ["lstm", "mlp"])
def test_per_node_gradients_equal_one_node_at_a_time(name):
    cfg, model, xs, targets, graphs = _model_and_batch(name)
    model.eval()
    forward = example_forward(model, cfg)
    params = {k: v.detach() for k, v in model.named_parameters()}
    # the functional forward of one node is the module's forward
    one_by_one = torch.stack([forward(params, xs[:, v]) for v in range(xs.size(1))], dim=1)
    assert torch.allclose(one_by_one, model(xs, graphs), atol=1e-6)
    count = int((targets[0] != IGNORE).sum())
    grads, losses = node_gradients(forward, params, xs.transpose(0, 1), targets, 2, count)
    for v in range(xs.size(1)):  # autograd on the module, one node at a time
        model.zero_grad()
        logits = model(xs[:, v: v + 1], graphs).unflatten(-1, (2, -1))[:, 0]
        loss = F.cross_entropy(logits.reshape(-1, 2), targets[v].reshape(-1), ignore_index=IGNORE)
        loss.backward()
        assert losses[v] == pytest.approx(float(loss.detach()), abs=1e-6)
        for k, p in model.named_parameters():
            assert torch.allclose(grads[k][v], p.grad, atol=1e-6), (v, k)


def test_each_node_moves_the_noiseless_sum_by_at_most_the_clipping_bound():
    cfg, model, xs, targets, _ = _model_and_batch("lstm", nodes=12)
    forward = example_forward(model, cfg)
    params = {k: v.detach() for k, v in model.named_parameters()}
    grads, _ = node_gradients(forward, params, 10 * xs.transpose(0, 1), targets, 2, 1)
    norms = torch.cat([g.flatten(1) for g in grads.values()], 1).norm(dim=1)
    bound = 0.5 * float(norms.min())  # every node's raw gradient is larger: all are clipped
    gen = torch.Generator().manual_seed(0)

    def flat(summed):
        return torch.cat([t.flatten() for t in summed.values()])

    full = flat(clip_sum_noise(grads, bound, 0.0, gen))
    for v in range(12):
        alone = flat(clip_sum_noise({k: g[v: v + 1] for k, g in grads.items()}, bound, 0.0, gen))
        assert float(alone.norm()) == pytest.approx(bound, rel=1e-5)  # its contribution, clipped to C
        rest = flat(clip_sum_noise({k: torch.cat([g[:v], g[v + 1:]]) for k, g in grads.items()}, bound, 0.0, gen))
        assert float((full - rest).norm()) <= bound * (1 + 1e-5)


# --- refusals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["gconv_gru", "gconv_lstm", "gcn", "sage", "gat"])
def test_graph_models_refused_naming_the_allowed_ones(model):
    mech = build_mechanism(OmegaConf.create(DP))
    with pytest.raises(ConfigError, match=r"model\.name.*model=mlp.*model=lstm") as err:
        mech.check_model(OmegaConf.create({"name": model}))
    assert "\n" not in str(err.value)


def _cfg(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS.parent), version_base="1.3"):
        return compose("config", overrides=["data=synthetic_temporal", "data.num_nodes=300", "data.num_communities=6",
                                            "data.periods=7", "device=cpu", "threads=1", "privacy=dp_mlp",
                                            "privacy.batch_size=32", "privacy.epochs=2", "model=lstm",
                                            "model.hidden_channels=8", *overrides])


@pytest.mark.parametrize("overrides,field", [
    (["model=gconv_gru"], "model.name"),
    (["model=gcn"], "model.name"),
    (["model=mlp", "model.norm=batch_norm"], "model.norm"),
    (["privacy.batch_size=1000"], "privacy.batch_size"),
    (["privacy.epsilon=0.001", "privacy.epochs=2000"], "privacy.epsilon"),  # below what any noise reaches
])
def test_refused_before_training(tmp_path, overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as err:
        run_experiment(_cfg(*overrides), tmp_path)
    if field == "privacy.epsilon":
        assert "eval.origins" in str(err.value)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "diagnostics").exists()


def test_lstm_on_one_snapshot_refused(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS.parent), version_base="1.3"):
        cfg = compose("config", overrides=["data.num_nodes=300", "device=cpu", "privacy=dp_mlp", "model=lstm"])
    with pytest.raises(ConfigError, match=r"model\.name.*data with periods"):
        run_experiment(cfg, tmp_path)


# --- a run ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("model", ["lstm", "mlp"])
def test_run_reports_node_level_privacy_over_all_origins(tmp_path, model):
    m = run_experiment(_cfg(f"model={model}", "model.hidden_channels=8", "eval.origins=2",
                            "privacy.epsilon=4"), tmp_path)
    n_train = 150  # half of 300 nodes
    assert m["mechanism"] == "dp_mlp" and m["privacy_unit"] == "node" and m["epsilon_covers"] == "model"
    assert m["forecast_origins"] == [4, 5] and m["origins_composed"] == 2 and m["released_periods"] == 6
    assert m["delta"] == pytest.approx(1 / (10 * n_train)) and m["target_epsilon"] == 4.0
    assert m["sample_rate"] == pytest.approx(1 / 5) and m["steps_per_origin"] == 2 * 5  # ceil(150 / 32) = 5
    assert m["steps"] == 2 * m["steps_per_origin"]
    assert 0.99 * 4.0 <= m["epsilon"] <= 4.0 and m["epsilon_per_origin"] < m["epsilon"]
    recount = RDPAccountant()
    recount.history = [(m["noise_multiplier"], m["sample_rate"], m["steps_per_origin"])] * m["origins_composed"]
    assert recount.get_epsilon(m["delta"], alphas=list(accounting.ORDERS)) == pytest.approx(m["epsilon"])
    assert m["epochs"] == 2 * 2 and m["best_epoch"] == 2  # no early stopping: every origin keeps its last epoch
    assert "test_auroc_true" in m and "h1_test_auroc" in m
    # the curves read private labels: diagnostics/, labelled, never history.csv
    assert not (tmp_path / "history.csv").exists()
    assert m["history_file"] == "diagnostics/history.csv" and m["diagnostics_outside_epsilon"] == "diagnostics"
    curve = (tmp_path / "diagnostics" / "history.csv").read_text().splitlines()
    assert curve[0].startswith("origin,epoch,train_loss,val_loss,val_acc") and len(curve) == 1 + 2 * 2
    assert (tmp_path / "diagnostics" / "NOT_COVERED_BY_EPSILON.txt").exists()
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["epsilon"] == pytest.approx(m["epsilon"]) and "val_loss" not in on_disk


@pytest.mark.slow
def test_no_diagnostics_when_asked(tmp_path):
    m = run_experiment(_cfg("eval.origins=1", "privacy.diagnostics=false"), tmp_path)
    assert m["history_file"] is None and not (tmp_path / "diagnostics").exists()
    assert not (tmp_path / "history.csv").exists()


@pytest.mark.slow
def test_no_look_ahead_and_same_seed_same_numbers():
    """The private forecast at origin t does not move with anything after t; a rerun repeats it."""
    data = build_dataset(temporal_cfg(num_nodes=300, periods=6, num_communities=6), seed=0)
    window = validate_window(OmegaConf.create({"horizons": [1], "origins": 2}), 6)
    mech = build_mechanism(OmegaConf.create(DP))
    mcfg = OmegaConf.load(CONFIGS.parent / "model" / "lstm.yaml")
    base = mech.train_forecaster(data, mcfg, None, window, seed=0)
    again = mech.train_forecaster(data, mcfg, None, window, seed=0)
    origin, later = window.origins
    assert torch.equal(base.probs[(later, 1)], again.probs[(later, 1)])
    future = data.clone()
    future.y[:, origin + 1:] = 1 - future.y[:, origin + 1:]
    future.x[:, origin + 1:] = torch.randn_like(future.x[:, origin + 1:])
    moved = mech.train_forecaster(future, mcfg, None, window, seed=0)
    assert torch.allclose(base.probs[(origin, 1)], moved.probs[(origin, 1)], atol=1e-6)
    assert not torch.allclose(base.probs[(later, 1)], moved.probs[(later, 1)])
