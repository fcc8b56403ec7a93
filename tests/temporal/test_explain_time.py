"""Explanations over time: message masks on copies, the reach, planted chains, IG completeness, refusals,
the stage in a run, and explainers that beat chance on a trained forecaster."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from scipy.stats import wilcoxon
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnrisk.data import build_dataset
from gnnrisk.errors import ConfigError
from gnnrisk.explain import TEMPORAL_MEMBERS, validate_stage
from gnnrisk.explain.evaluation import per_node_auroc, pooled_auroc
from gnnrisk.explain.temporal import (CopiesGraph, Explained, PlantedChains, bootstrap_auroc, explain_forecast,
                                      integrated_gradients, model_value, node_reach, pair_truth, saliency)
from gnnrisk.models import build_forecaster
from gnnrisk.models.recurrent import PeriodGraph
from gnnrisk.pipeline import prepare_run, run_experiment
from gnnrisk.privacy import build_mechanism
from gnnrisk.train.forecast import model_inputs, validate_window
from tests_data_helpers import CONFIGS, temporal_cfg

EXPLAIN = CONFIGS.parent / "explain"
TRAIN = OmegaConf.create({"epochs": 40, "lr": 0.01, "weight_decay": 5e-4, "patience": 20, "monitor": "val_loss",
                          "batch_size": None, "num_neighbors": [10]})


def explain_cfg(name: str, **changes):
    """The member's config file with the given changes."""
    cfg = OmegaConf.load(EXPLAIN / f"{name}.yaml")
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.fixture(scope="module")
def trained():
    """A gconv_gru forecaster trained 40 epochs on a 300-node population of 12 periods (one origin)."""
    data = build_dataset(temporal_cfg(num_nodes=300, num_communities=6), seed=1)
    window = validate_window(OmegaConf.create({"horizons": [1], "origins": 1}), int(data.num_periods))
    model_cfg = OmegaConf.load(CONFIGS.parent / "model" / "gconv_gru.yaml")
    forecast = build_mechanism(OmegaConf.create({"name": "none"})).train_forecaster(data, model_cfg, TRAIN, window,
                                                                                   seed=1)
    return data, forecast


def random_graphs(n: int, periods: int, ties: int, seed: int) -> list[PeriodGraph]:
    """Random symmetric period graphs without self-loops."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(periods):  # periods
        u, v = torch.randint(0, n, (2, ties), generator=g)
        keep = u != v
        ei = torch.cat([torch.stack([u[keep], v[keep]]), torch.stack([v[keep], u[keep]])], 1)
        out.append(PeriodGraph(torch.unique(ei, dim=1), n))
    return out


def test_copies_graph_scales_each_copys_messages_after_normalisation():
    n, d = 30, 5
    graph = random_graphs(n, 1, 70, seed=0)[0]
    e = graph.edge_index.size(1)
    g = torch.Generator().manual_seed(1)
    masked = [torch.randperm(e, generator=g)[:k] for k in (10, 0, 25)]
    weights = [torch.rand(m.numel(), generator=g) for m in masked]
    copies = CopiesGraph(graph, masked)
    copies.set_weights(torch.cat(weights))
    h = torch.randn(3 * n, d, generator=g)
    out = copies.propagate(h).view(3, n, d)
    normed, value = gcn_norm(graph.edge_index, None, n, add_self_loops=False)
    for i in range(3):
        scale = torch.ones(e)
        scale[masked[i]] = weights[i]
        dense = torch.zeros(n, n).index_put_((normed[1], normed[0]), value * scale, accumulate=True)
        assert torch.allclose(out[i], dense @ h.view(3, n, d)[i], atol=1e-5)
    plain = CopiesGraph(graph, [masked[0]])
    plain.set_weights(torch.ones(masked[0].numel()))
    assert torch.allclose(plain.propagate(h[:n]), graph.propagate(h[:n]), atol=1e-5)  # w = 1: the plain graph


def test_reach_walks_back_one_hop_per_period_with_a_cap():
    def period(*ties):
        t = torch.tensor(ties).T
        return PeriodGraph(torch.cat([t, t.flip(0)], 1), 6)

    graphs = [period((2, 5), (0, 3)), period((1, 2), (3, 4)), period((0, 1))]
    for hops, expected in ((3, {(0, 1, 2), (1, 2, 1), (2, 5, 0), (0, 3, 0)}), (2, {(0, 1, 2), (1, 2, 1), (0, 3, 0)}),
                           (1, {(0, 1, 2), (0, 3, 0)})):
        reach = node_reach(graphs, 0, 2, hops, 6)
        assert set(zip(reach.u.tolist(), reach.v.tolist(), reach.period.tolist())) == expected
        for s, ids in enumerate(reach.edges):  # both directions of every candidate tie, mapped to its pair
            assert ids.numel() == 2 * int((reach.period == s).sum())
            src, dst = graphs[s].edge_index[:, ids]
            pairs = reach.pair_of_edge[s]
            assert torch.equal(torch.minimum(src, dst), reach.u[pairs]) and torch.equal(reach.period[pairs],
                                                                                       torch.full_like(pairs, s))


def chains_data() -> Data:
    """10 nodes, 7 periods, planted transmissions [src, dst, period] and the true outcome they imply."""
    y = torch.zeros(10, 7, dtype=torch.long)
    y[0, 1] = 1                 # an earlier spell of node 0 (transmitted by 8 at period 1): not this outcome's cause
    y[8, 0] = 1
    y[0, 5:] = 1                # node 0 acquires at 5 from nodes 1 and 6
    y[1, 2:5] = 1               # node 1 since period 2, from node 2
    y[2, 0:2] = 1               # node 2 since period 0, from node 3 within period 0
    y[3, 0] = 1                 # node 3: own onset
    y[6, 3:5] = 1               # node 6 since period 3: own onset (no transmission)
    y[9, 6] = 1                 # node 9 acquires at 6 from node 0 (after the origin)
    rows = [[8, 0, 1], [1, 0, 5], [6, 0, 5], [2, 1, 2], [3, 2, 0], [0, 9, 6]]
    data = Data(y_true=y, transmissions=torch.tensor(rows).T, num_nodes=10)
    data.num_periods = 7
    return data


def test_planted_chain_works_back_from_the_spell_that_holds_the_outcome():
    chains = PlantedChains(chains_data())
    # forecast at origin 4 of period 5: 1 -> 0 and 6 -> 0 at 5 (ties read in 4), 2 -> 1 at 2 (read in 1),
    # 3 -> 2 within period 0; 6 and 3 began by onset; node 0's earlier spell (8 -> 0 at 1) is not on the chain
    assert chains.chain(0, 5, 4) == {(0, 1, 4), (0, 6, 4), (1, 2, 1), (2, 3, 0)}
    assert chains.chain(0, 6, 4) == chains.chain(0, 5, 4)      # horizon 2: the same spell, still within the window
    assert chains.chain(9, 6, 4) == {(0, 1, 4), (0, 6, 4), (1, 2, 1), (2, 3, 0)}  # 0 -> 9 at 6 is after the origin
    assert chains.chain(9, 6, 5) == {(0, 9, 5), (0, 1, 4), (0, 6, 4), (1, 2, 1), (2, 3, 0)}
    assert chains.chain(6, 4, 3) == set() and chains.chain(4, 5, 4) == set()  # onset only; not positive
    assert chains.every_pair(4) == {(0, 8, 0), (0, 1, 4), (0, 6, 4), (1, 2, 1), (2, 3, 0)}
    t = torch.tensor([[0, 1], [1, 0]])
    graphs = [PeriodGraph(t, 10)] * 5
    reach = node_reach(graphs, 0, 4, 1, 10)   # the tie {0, 1} in every period: planted in period 4 only
    assert pair_truth(reach, chains.chain(0, 5, 4)).tolist() == [s == 4 for s in reach.period.tolist()]


@pytest.mark.parametrize("name", ["gconv_gru", "gconv_lstm"])
def test_integrated_gradients_add_up_to_the_change_of_the_forecast(name):
    torch.manual_seed(0)
    n, periods, feats = 80, 5, 6
    model = build_forecaster(OmegaConf.create({"name": name, "hidden_channels": 8, "num_layers": 2, "dropout": 0.0}),
                             feats, 2)
    graphs = random_graphs(n, periods, 200, seed=3)
    expl = Explained(model, torch.randn(periods, n, feats), graphs, 0, 1)
    reaches = [node_reach(graphs, v, periods - 1, 2, n) for v in (0, 5)]
    attributions = integrated_gradients(expl, reaches, [1, 0], n_steps=16, batch=7)
    for reach, cls, attr in zip(reaches, (1, 0), attributions):
        change = model_value(expl, reach, cls, 1.0) - model_value(expl, reach, cls, 0.0)
        assert abs(change) > 1e-3
        assert float(sum(a.sum() for a in attr)) == pytest.approx(change, rel=1e-3, abs=1e-5)
    one_by_one = [saliency(expl, [r], [1], batch=1)[0] for r in reaches]
    together = saliency(expl, reaches, [1, 1], batch=2)     # copies do not interact
    for a, b in zip(one_by_one, together):
        assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a, b))


@pytest.mark.slow
def test_explainers_beat_random_on_a_trained_forecaster(trained):
    data, forecast = trained
    tables = {}
    for name in TEMPORAL_MEMBERS:
        cfg = explain_cfg(name, split="all", num_nodes=25, num_hops=1, n_steps=8, epochs=20)
        table, fids, info = explain_forecast(cfg, data, forecast, seed=0)
        assert info["target"] == 11 and len(fids) == 25 and table["node"].nunique() == 25
        tables[name] = table.rename(columns={"planted": "causal", "in_top_k": "top"})
    assert all(t[["node", "u", "v", "period"]].equals(tables["random"][["node", "u", "v", "period"]])
               for t in tables.values())                     # the same candidates and truth for every member
    per_node = {name: per_node_auroc(t) for name, t in tables.items()}
    chance = pooled_auroc(tables["random"])
    assert abs(chance - 0.5) < 0.08 and len(per_node["random"]) >= 15
    for name in ("saliency", "integrated_gradients", "gnnexplainer"):
        lo, _ = bootstrap_auroc(tables[name], seed=0)
        assert lo > 0.5 and pooled_auroc(tables[name]) > chance + 0.1, name
        paired = per_node[name] - per_node["random"]          # same nodes, same truth: one-sided signed-rank test
        assert wilcoxon(paired, alternative="greater").pvalue < 0.05 / 3, name   # Bonferroni over the three


def test_refused_before_training(trained):
    data, _ = trained
    cases = [(explain_cfg("pgexplainer"), "gconv_gru", "explain.name"),
             (explain_cfg("graphmask"), "gconv_lstm", "explain.name"),
             (explain_cfg("saliency"), "lstm", "explain.name"),          # reads no tie
             (explain_cfg("saliency"), "gcn", "explain.name"),           # a snapshot model: no recurrent weights
             (explain_cfg("saliency", subgraph=False), "gconv_gru", "explain.subgraph"),
             (explain_cfg("saliency", undirected=False), "gconv_gru", "explain.undirected"),
             (explain_cfg("saliency", ground_truth="edges"), "gconv_gru", "explain.ground_truth"),
             (explain_cfg("saliency", num_hops=0), "gconv_gru", "explain.num_hops"),
             (explain_cfg("saliency", top_k=0), "gconv_gru", "explain.top_k"),
             (explain_cfg("integrated_gradients", n_steps=0), "gconv_gru", "explain.n_steps"),
             (explain_cfg("gnnexplainer", lr=0), "gconv_gru", "explain.lr"),
             (explain_cfg("saliency", classes=[2]), "gconv_gru", "explain.classes[0]"),
             (explain_cfg("saliency", nodes=[1, 1]), "gconv_gru", "explain.nodes")]
    for cfg, model, field in cases:
        with pytest.raises(ConfigError) as err:
            validate_stage(cfg, data, model)
        assert err.value.field == field and "\n" not in str(err.value), (field, str(err.value))
    for name in TEMPORAL_MEMBERS:
        validate_stage(explain_cfg(name), data, "gconv_gru")


def compose_run(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS.parent), version_base="1.3"):
        return compose("config", overrides=["data=synthetic_temporal", "data.num_nodes=300", "data.num_communities=6",
                                            "data.periods=6", "train.epochs=3", "device=cpu", "threads=1",
                                            "model=gconv_gru", "model.hidden_channels=8", *overrides])


def test_the_pipeline_refuses_a_snapshot_only_explainer():
    with pytest.raises(ConfigError, match="explain=.pgexplainer. is not allowed: not available on data with periods"):
        prepare_run(compose_run("explain=pgexplainer"))


def test_stage_in_a_run_writes_the_table_and_the_static_keys(tmp_path):
    metrics = run_experiment(compose_run("explain=gnnexplainer", "explain.epochs=3", "explain.num_nodes=3",
                                         "explain.split=all", "eval.origins=2"), tmp_path)
    table = pd.read_csv(tmp_path / "explanations.csv")
    assert list(table.columns) == ["node", "u", "v", "period", "score", "planted", "in_top_k"]
    assert table["node"].nunique() == 3 and (table["u"] < table["v"]).all() and table["period"].max() == 4
    assert (table.groupby("node")["in_top_k"].sum() == 10).all()
    static = ("explain_algorithm", "explain_num_nodes", "explain_num_hops", "explain_subgraph", "explain_top_k",
              "explain_ground_truth", "explain_unit", "explain_auroc", "explain_auroc_node_mean",
              "explain_auroc_node_std", "explain_auroc_num_nodes", "explain_precision_at_k", "explain_r_precision",
              "explain_fidelity_plus_label", "explain_fidelity_minus_label", "explain_fidelity_plus_prob",
              "explain_fidelity_minus_prob", "explain_characterization", "explain_sparsity",
              "explain_seconds_per_node", "explain_fit_seconds")
    assert set(static) <= set(metrics)
    assert metrics["explain_num_nodes"] == 3 and metrics["explain_unit"] == "tie_period"
    assert metrics["explain_origin"] == 4 and metrics["explain_target_period"] == 5
    assert json.loads((tmp_path / "metrics.json").read_text())["explain_num_pairs"] == len(table)


def test_bootstrap_interval_of_the_pooled_auroc():
    rng = np.random.default_rng(0)
    rows = [(node, float(rng.random()) + causal, bool(causal)) for node in range(8) for causal in (0,) * 40 + (1,) * 3]
    table = pd.DataFrame(rows, columns=["node", "score", "causal"])
    assert bootstrap_auroc(table, seed=0) == (1.0, 1.0)                 # every positive above every negative
    table["score"] = rng.random(len(table))
    lo, hi = bootstrap_auroc(table, seed=0)
    assert lo < pooled_auroc(table) < hi and hi - lo < 0.5
