"""Explanations over time: which (tie, period) pairs drove a forecast, scored against planted transmissions.

What is explained: the last origin's forecast (origin t = `eval.origins`' latest, horizon h = the first
of `eval.horizons`) of a sample of nodes, through the model's support for the node's planted outcome
class c at the target period t + h: the log-odds `logit_c - logsumexp(other logits)` (saliency,
integrated gradients) or the cross-entropy towards c (GNNExplainer's prediction loss).

Candidates (the reach): for node v the scored units are (tie, period s) pairs, s = 0..t, of the
graphs the forecaster read (`Forecast.graphs`: the released ones under a privacy mechanism). They are
found by a time-respecting walk backwards from v, one hop per period: at period t the ties at v; the
ties' other endpoints join the reach for the periods before, and so on, so a tie of period s is a
candidate when it lies within min(K, t - s + 1) hops of v along ties of periods s..t
(K = `explain.num_hops`, default 2: v's infector and the infector's infector). The recurrent graph
models read further (the GRU's reset gate makes two hops per period), so the cap bounds the table,
not the model.

Scores come from a mask value w per directed edge of each period's graph that scales the edge's
message after the graph's symmetric normalisation (PyG's explain masks, as the static stage; see
`CopiesGraph` for why not the models' gcn_norm-weighted path), varied on the candidate edges only
(every other tie keeps w = 1):
- saliency: |d f / d w| at w = 1;
- integrated_gradients: the path integral of d f / d w from w = 0 to w = 1 on every candidate edge
  together, by the n_steps-point Gauss-Legendre rule (Captum's default, as the static stage);
  importance = |attribution|; the attributions add up to f(1) - f(0) (completeness, tested);
- gnnexplainer: a soft mask sigmoid(m) on the candidate edges optimised for `epochs` Adam steps
  (`lr`) on PyG's GNNExplainer objective with PyG's default coefficients
  (`GNNExplainer.default_coeffs`: cross-entropy towards c + 0.005 * sum(mask) + 1.0 * mean entropy,
  over the edges whose first-step gradient is non-zero; those without get 0, as in PyG);
- random: uniform scores from a seeded generator (the chance baseline).
The two directions of a tie share its score: the mean over them (as `explain.undirected`).

Ground truth (`explain.ground_truth=paths`): the planted transmission chain that ends at v's outcome
at the target period. v's outcome at t + h started with its current spell at period q (the latest q
with the outcome at q..t+h); each planted transmission w -> v at period q marks the pair
({w, v}, q - 1) (the model reads the tie in period q - 1 together with w's record of q - 1 to
anticipate the transmission; a period-0 transmission, contagion within period 0, marks ({w, v}, 0)),
and the chain goes on from w's spell that contains period q - 1, back to spells that began without a
transmission. Pairs after the origin are dropped. A node that is not positive at t + h, or whose
spell began without a transmission, has no positive pair and is skipped by the AUROC (as the static
stage skips nodes without ground truth). `explain.ground_truth=all`: every planted transmission pair
of the window, whoever it reached.

Batched forwards: a `CopiesGraph` holds S copies of the population (the model sees S * N nodes), each
copy with its own weights: IG evaluates its n_steps points as copies, saliency and GNNExplainer
explain several nodes at once (Adam is elementwise and the copies' losses add up, so each node's mask
follows exactly its own optimisation).

The modules: temporal_truth.py holds the reach and the planted chains, temporal_masks.py the copies and
their masks (`CopiesGraph`, `Explained`), temporal_explainers.py the explainers; this one the checks, the
nodes to explain, the stage and its metrics (fidelity, the AUROC's interval).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor
from torch_geometric.data import Data

from gnnrisk.errors import ConfigError, check_choice, check_number
from gnnrisk.explain.evaluation import GROUND_TRUTHS, summarise
from gnnrisk.explain.nodes import SPLITS, validate_node_spec
from gnnrisk.explain.temporal_explainers import gnnexplainer, integrated_gradients, model_value, saliency
from gnnrisk.explain.temporal_masks import CopiesGraph, Explained, chunks, edge_to_pairs, edge_weights
from gnnrisk.explain.temporal_truth import PlantedChains, Reach, node_reach, pair_truth
from gnnrisk.models.recurrent import RECURRENT_GRAPH_MODELS, PeriodGraph
from gnnrisk.train.forecast import model_inputs

log = logging.getLogger(__name__)

TEMPORAL_ALGORITHMS = ("saliency", "integrated_gradients", "gnnexplainer", "random")
DEFAULT_HOPS = 2          # explain.num_hops=null over periods
COPY_BUDGET = 25_000      # node copies (S * N) per batched forward: bounds the memory of the autograd graph
TABLE_FILE = "explanations.csv"


# ---------------------------------------------------------------------------------------------- config

def validate_temporal(cfg: DictConfig, data: Data, model_name: str) -> None:
    """Refuse, before training, an `explain` config that has no meaning over periods (one-line ConfigError)."""
    check_choice("explain.name", cfg.name, TEMPORAL_ALGORITHMS)
    if model_name not in RECURRENT_GRAPH_MODELS:  # named like the static check_architecture: the explainer's field
        raise ConfigError("explain.name", cfg.name, f"over periods it weighs every period's ties inside a recurrent "
                          f"graph model, which model={model_name} is not: use model="
                          + " or model=".join(RECURRENT_GRAPH_MODELS))
    check_choice("explain.ground_truth", cfg.get("ground_truth", "paths"), GROUND_TRUTHS)
    if cfg.get("num_hops") is not None:
        check_number("explain.num_hops", cfg.num_hops, low=1, integer=True)
    check_number("explain.top_k", cfg.get("top_k", 10), low=1, integer=True)
    if cfg.get("subgraph", True) is not True:
        raise ConfigError("explain.subgraph", cfg.subgraph, "over periods the model reads every period's whole "
                          "graph and the (tie, period) pairs within explain.num_hops are scored: expected true")
    if cfg.get("undirected", True) is not True:
        raise ConfigError("explain.undirected", cfg.undirected, "over periods a (tie, period) pair is scored, "
                          "both directions together: expected true")
    for key in ("epochs", "n_steps"):
        if key in cfg:
            check_number(f"explain.{key}", cfg[key], low=1, integer=True)
    if "lr" in cfg:
        check_number("explain.lr", cfg.lr, low=0.0, low_open=True)
    truth = data.y_true if getattr(data, "y_true", None) is not None else data.y
    validate_node_spec(cfg, int(data.num_nodes), int(truth.max()) + 1)


def num_hops(cfg: DictConfig) -> int:
    """K: the cap on the hops from the explained node (null = DEFAULT_HOPS)."""
    return int(cfg.get("num_hops") or DEFAULT_HOPS)


# ---------------------------------------------------------------------------------------------- fidelity

def fidelities(expl: Explained, reaches: list[Reach], scores: list[Tensor], cls: list[int], tops: list[Tensor],
               full: Tensor, batch: int) -> list[dict[str, float]]:
    """Per node, the static stage's fidelity forms on its candidate pairs (every other tie keeps weight 1).

    Label form (PyG): does the predicted class change under the complement of the soft mask (fid+) or
    the soft mask itself (fid-), mask = scores / max. Probability form (DIG): drop in the probability
    of the explained class when the top-k pairs are removed (fid+) or only they are kept (fid-).
    `full`: the nodes' unmasked logits. Four copies per node, `batch` copies per forward.
    """
    device = expl.xs.device
    jobs = []
    for i, (score, top) in enumerate(zip(scores, tops)):  # nodes
        peak = float(score.max()) if score.numel() else 0.0
        soft = (score / peak if peak > 0 else score).float()
        jobs += [(i, fill.to(device)) for fill in (1.0 - soft, soft, 1.0 - top.float(), top.float())]
    logits = []
    with torch.no_grad():
        for part in chunks(jobs, batch):
            rs = [reaches[i] for i, _ in part]
            logits.append(expl.logits([r.node for r in rs], [r.edges for r in rs],
                                      edge_weights(rs, [fill for _, fill in part])))
    out = torch.cat(logits).view(len(reaches), 4, -1)
    rows = []
    for i, r in enumerate(reaches):  # nodes
        pred, prob = out[i].argmax(-1), out[i].softmax(-1)[:, cls[i]]
        full_pred, full_prob = int(full[i].argmax()), float(full[i].softmax(-1)[cls[i]])
        rows.append({"fidelity_plus_label": float(pred[0] != full_pred),
                     "fidelity_minus_label": float(pred[1] != full_pred),
                     "fidelity_plus_prob": full_prob - float(prob[2]), "fidelity_minus_prob": full_prob - float(prob[3]),
                     "sparsity": 1.0 - float(tops[i].sum()) / max(r.num_pairs, 1)})
    return rows


# ---------------------------------------------------------------------------------------------- nodes

def select_temporal_nodes(cfg: DictConfig, data: Data, graphs: list[PeriodGraph], outcome: Tensor, seed: int
                          ) -> list[int]:
    """The nodes to explain: a list as given, or a seeded sample of `explain.split` nodes whose planted outcome
    at the target period is in `explain.classes` (binary default: positive), with a tie in the window."""
    n = int(data.num_nodes)
    tied = torch.zeros(n, dtype=torch.bool, device=outcome.device)
    for g in graphs:
        tied[g.edge_index[1]] = True
    spec = cfg.get("nodes", "sample")
    if isinstance(spec, (list, tuple, ListConfig)):
        ids = [int(check_number(f"explain.nodes[{i}]", v, low=0, high=n - 1, integer=True))
               for i, v in enumerate(spec)]
        lonely = [v for v in ids if not bool(tied[v])]
        if lonely:
            raise ConfigError("explain.nodes", list(spec), f"nodes {lonely} have no tie in any period the forecast "
                              "reads, so there is no link to explain; drop them or use nodes=sample")
        return sorted(ids)
    count = int(cfg.num_nodes if spec == "sample" else spec)
    split = check_choice("explain.split", cfg.get("split", "test"), SPLITS)
    mask = torch.ones(n, dtype=torch.bool, device=outcome.device) if split == "all" else \
        getattr(data, f"{split}_mask").clone()
    classes = cfg.get("classes")
    num_classes = int(outcome.max()) + 1
    if classes is None:
        classes = [1] if num_classes <= 2 else list(range(num_classes))
    mask &= torch.isin(outcome, torch.tensor([int(c) for c in classes], device=outcome.device)) & tied
    pool = mask.nonzero().flatten().cpu()
    if pool.numel() == 0:
        raise ConfigError("explain.nodes", spec, f"no node to explain: no {split} node with a tie has its planted "
                          "outcome at the target period in explain.classes; try explain.split=all, other "
                          "explain.classes, or an explicit list of node ids")
    order = torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(seed))
    return sorted(pool[order[:count]].tolist())


# ---------------------------------------------------------------------------------------------- stage

def explain_forecast(cfg: DictConfig, data: Data, forecast: Any, seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                     dict[str, Any]]:
    """Explain the last origin's first-horizon forecast: (pair table, per-node fidelities, settings)."""
    name = cfg.name
    origin, horizon = forecast.window.origins[-1], forecast.window.horizons[0]
    target = origin + horizon
    graphs = forecast.graphs[:origin + 1]
    n = int(data.num_nodes)
    truth_y = data.y_true if getattr(data, "y_true", None) is not None else data.y
    outcome = truth_y[:, target]
    hops = num_hops(cfg)
    nodes = select_temporal_nodes(cfg, data, graphs, outcome, seed)
    expl = Explained(forecast.model, model_inputs(data)[:origin + 1], graphs, 0, len(forecast.window.horizons))
    cls = [int(outcome[v]) for v in nodes]
    has_truth = getattr(data, "transmissions", None) is not None and getattr(data, "y_true", None) is not None
    chains = PlantedChains(data) if has_truth else None
    everything = chains.every_pair(origin) if has_truth and cfg.get("ground_truth", "paths") == "all" else None
    start = time.perf_counter()
    reaches = [node_reach(graphs, v, origin, hops, n) for v in nodes]
    reach_seconds = time.perf_counter() - start
    batch = max(1, COPY_BUDGET // n)
    torch.manual_seed(seed)
    start = time.perf_counter()
    if name == "saliency":
        per_pair = [edge_to_pairs(r, e) for r, e in zip(reaches, saliency(expl, reaches, cls, batch))]
    elif name == "integrated_gradients":
        per_pair = [edge_to_pairs(r, [a.abs() for a in attr]) for r, attr in
                    zip(reaches, integrated_gradients(expl, reaches, cls, int(cfg.n_steps), batch))]
    elif name == "gnnexplainer":
        per_pair = [edge_to_pairs(r, e) for r, e in
                    zip(reaches, gnnexplainer(expl, reaches, cls, int(cfg.epochs), float(cfg.lr), batch))]
    else:  # random: the chance baseline
        generator = torch.Generator().manual_seed(seed)
        per_pair = [torch.rand(r.num_pairs, generator=generator, dtype=torch.float64) for r in reaches]
    seconds = (time.perf_counter() - start + reach_seconds) / max(len(nodes), 1)
    top_k = int(cfg.get("top_k", 10))
    full = expl.plain_logits()[torch.tensor(nodes, device=expl.xs.device)]
    frames, tops = [], []
    covered = planted_total = 0
    for r, scores in zip(reaches, per_pair):
        order = torch.sort(scores, descending=True, stable=True).indices
        top = torch.zeros(r.num_pairs, dtype=torch.bool)
        top[order[:top_k]] = True
        tops.append(top)
        if has_truth:
            positives = everything if everything is not None else chains.chain(r.node, target, origin)
            truth = pair_truth(r, positives)
            if everything is None:
                planted_total += len(positives)
                covered += int(truth.sum())
        else:
            truth = torch.zeros(r.num_pairs, dtype=torch.bool)
        frames.append(pd.DataFrame({"node": r.node, "u": r.u.cpu().numpy(), "v": r.v.cpu().numpy(),
                                    "period": r.period.cpu().numpy(), "score": scores.numpy(),
                                    "planted": truth.numpy(), "in_top_k": top.numpy()}))
    fids = fidelities(expl, reaches, per_pair, cls, tops, full, batch)
    table = pd.concat(frames, ignore_index=True)
    info = {"nodes": len(nodes), "origin": origin, "horizon": horizon, "target": target, "hops": hops, "seconds": seconds,
            "has_truth": has_truth, "coverage": covered / planted_total if planted_total else None,
            "num_pairs": len(table), "top_k": top_k}
    return table, pd.DataFrame(fids), info


def bootstrap_auroc(table: pd.DataFrame, seed: int, draws: int = 1000) -> tuple[float | None, float | None]:
    """95% percentile interval of the pooled AUROC, resampling the explained nodes with ground truth.

    A resample that takes node i c_i times has pooled AUROC c'Uc / ((c'P)(c'N)), with U[i, j] the
    (positive of i, negative of j) pairs ranked right (ties count one half) and P, N the counts of
    positives and negatives per node, so every draw costs a G x G product (G = nodes with truth).
    """
    frame = table[table.groupby("node")["causal"].transform("any")]
    groups = [(g["score"].to_numpy(float)[g["causal"].to_numpy(bool)],
               np.sort(g["score"].to_numpy(float)[~g["causal"].to_numpy(bool)])) for _, g in frame.groupby("node")]
    if len(groups) < 2:
        return None, None
    pos = np.array([p.size for p, _ in groups], dtype=float)
    neg = np.array([q.size for _, q in groups], dtype=float)
    pairs = np.array([[(np.searchsorted(q, p, "left") + np.searchsorted(q, p, "right")).sum() / 2 for _, q in groups]
                      for p, _ in groups])
    counts = np.stack([np.bincount(row, minlength=len(groups)) for row in
                       np.random.default_rng(seed).integers(0, len(groups), (draws, len(groups)))]).astype(float)
    denom = (counts @ pos) * (counts @ neg)
    stats = np.einsum("di,ij,dj->d", counts, pairs, counts)[denom > 0] / denom[denom > 0]
    if not stats.size:
        return None, None
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def run_temporal(cfg: DictConfig, data: Data, forecast: Any, run_dir: Path, seed: int) -> dict[str, Any]:
    """The explain stage over periods: explanations.csv in `run_dir` and the explain_* metrics."""
    table, fids, info = explain_forecast(cfg, data, forecast, seed)
    log.info("explain %s over periods: %d nodes, %d (tie, period) pairs, %.2f s per node", cfg.name,
             info["nodes"], len(table), info["seconds"])
    scored = table.rename(columns={"planted": "causal", "in_top_k": "top"})[["node", "score", "top", "causal"]]
    metrics: dict[str, Any] = {
        "explain_algorithm": cfg.name, "explain_num_nodes": info["nodes"],
        "explain_num_hops": info["hops"], "explain_top_k": info["top_k"], "explain_subgraph": True,
        "explain_unit": "tie_period", "explain_seconds_per_node": info["seconds"], "explain_fit_seconds": 0.0,
        "explain_origin": info["origin"], "explain_horizon": info["horizon"],
        "explain_target_period": info["target"], "explain_num_pairs": info["num_pairs"],
    }
    metrics.update(summarise(scored, fids, info["has_truth"]))
    lo, hi = bootstrap_auroc(scored, seed) if info["has_truth"] else (None, None)
    metrics["explain_auroc_ci_lo"], metrics["explain_auroc_ci_hi"] = lo, hi
    metrics["explain_truth_coverage"] = info["coverage"]
    metrics["explain_ground_truth"] = cfg.get("ground_truth", "paths") if info["has_truth"] else None
    table.to_csv(Path(run_dir) / TABLE_FILE, index=False)
    return metrics


# Imported from here by gnnrisk.explain (the stage) and the tests (the parts, from the modules above).
__all__ = ["TEMPORAL_ALGORITHMS", "CopiesGraph", "Explained", "PlantedChains", "bootstrap_auroc", "explain_forecast",
           "integrated_gradients", "model_value", "node_reach", "pair_truth", "run_temporal", "saliency",
           "validate_temporal"]
