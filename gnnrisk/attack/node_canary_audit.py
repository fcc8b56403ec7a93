"""Node canary audit: a model-based epsilon lower bound for node-level privacy (`attack=canary_nodes`).

Each training run appends `num_canaries` new nodes to the graph. A canary has its own feature
vector far from the data (the feature mean plus `feature_scale` per-feature standard deviations in
a random direction), a uniformly random label, and ties to `degree` distinct uniformly drawn
existing nodes (`high_degree` ties for a `high_degree_share` of them, the worst case for degree
bounding). With `twins` (default), each canary also has a twin that is always a training node: the
same features and ties, another label, so that without the canary the model confidently predicts
the twin's label at the canary's input and with it the two contest the point (the audit may choose
the fixed part of the dataset: DP holds for every pair of neighbouring graphs). Each canary is
included independently with probability 1/2: included, it is a training
node with all its ties; excluded, it is an isolated row in no split (no mask, no tie), which every
node-level mechanism here treats exactly as an absent node (it is never an example, never enters
another node's aggregation or tree). The run's own mechanism is re-run on that graph
(`targets.retrain_target`) and the released model is queried once.

What the attacker sees: the released model (weights, and for GAP/ProGAP their released cached
aggregations, one row per node of the training graph, which epsilon covers) plus everything but
the coins: the population, every canary's features, label and designed ties. Every canary is
queried by the same path, independent of its coin: the released model's forward pass on the graph
of all real nodes and all canaries with all their designed ties. Models that read edges at
inference (GCN/SAGE/MLP) thus see an included and an excluded canary identically; cached models
(GAP, ProGAP) ignore the edges and answer from the canary's released cache row (its noisy
aggregations when included, noise alone when excluded: a row the attacker could draw itself from
the release without the canary) and its features. The score is the log
probability of the canary's label.

Trials: the canaries of one run share one model, so they are dependent; the bound follows the
one-run argument (Steinke, Nasr and Jagielski, NeurIPS 2023) and is reported with basis
"dependent", as the edge canary audit does. Only with one canary per run (`num_canaries: 1`) is
every trial its own training run, and the basis is "independent". Trials of `runs` runs (fresh
canaries, coins and mechanism seed each) are pooled; the threshold is chosen on half of them and
the Clopper-Pearson bound is computed on the other half (`audit_bound.audit_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce

from gnnrisk.attack.audit_bound import audit_scores
from gnnrisk.attack.context import AttackContext
from gnnrisk.attack.scores import auroc
from gnnrisk.attack.targets import retrain_target
from gnnrisk.data.rewire import with_edges
from gnnrisk.errors import ConfigError, check_number
from gnnrisk.train.loop import predict_logits

FIELD = "attack.canary_nodes"
MAX_RUNS = 100  # each run re-trains the mechanism once
# Node attributes whose canary value is a copy of the first tie's (neither mechanism nor audit reads them).
COPIED = ("group", "community")


@dataclass(frozen=True)
class Settings:
    """The validated `attack.canary_nodes` block."""

    num_canaries: int
    degree: int
    high_degree: int
    high_degree_share: float
    feature_scale: float
    twins: bool
    runs: int

    @property
    def num_high(self) -> int:
        """How many canaries of a run get `high_degree` ties."""
        return int(round(self.high_degree_share * self.num_canaries))


def validate(cfg: DictConfig, data: Data) -> Settings:
    """Every value of `attack.canary_nodes`, checked against the graph before any training."""
    block, n = cfg.canary_nodes, data.num_nodes
    count = int(check_number(f"{FIELD}.num_canaries", block.num_canaries, low=1, high=n, integer=True))
    degree = int(check_number(f"{FIELD}.degree", block.degree, low=1, high=n, integer=True))
    high = int(check_number(f"{FIELD}.high_degree", block.high_degree, low=1, high=n, integer=True))
    share = check_number(f"{FIELD}.high_degree_share", block.high_degree_share, low=0.0, high=1.0)
    scale = check_number(f"{FIELD}.feature_scale", block.feature_scale, low=0.0, high=1e3, low_open=True)
    twins = block.twins
    if not isinstance(twins, bool):
        raise ConfigError(f"{FIELD}.twins", twins, "expected true or false")
    runs = int(check_number(f"{FIELD}.runs", block.runs, low=1, high=MAX_RUNS, integer=True))
    if count * runs < 4:
        raise ConfigError(f"{FIELD}.num_canaries", count,
                          f"expected num_canaries * runs >= 4 (runs={runs}): half the trials choose the threshold, "
                          "half bound epsilon")
    if getattr(data, "train_mask", None) is None or data.y is None:
        raise ConfigError("attack", "canary_nodes", f"needs labels and a train_mask; dataset {data.name!r} has none")
    return Settings(count, degree, high, share, scale, twins, runs)


def draw_ties(count: int, degrees: Tensor, num_nodes: int, generator: torch.Generator,
              chunk_cells: int = 1 << 24) -> tuple[Tensor, Tensor]:
    """(canary index, existing node) pairs: `degrees[c]` distinct uniform existing nodes per canary.

    The k smallest of N uniform keys are a uniform k-subset; canaries are keyed in chunks so that
    the [chunk, N] key matrix stays under `chunk_cells` entries.
    """
    kmax = int(degrees.max())
    rows = max(1, chunk_cells // num_nodes)
    picks = torch.cat([torch.rand(min(rows, count - s), num_nodes, generator=generator).topk(kmax, dim=1, largest=False)
                       .indices for s in range(0, count, rows)])
    keep = torch.arange(kmax)[None, :] < degrees[:, None]
    canary = torch.arange(count)[:, None].expand(-1, kmax)
    return canary[keep], picks[keep]


def draw_canaries(data: Data, s: Settings, generator: torch.Generator) -> tuple[Data, Data, Tensor]:
    """(training graph, query graph, inclusion coins) for one run; canaries are nodes N..N+m-1 of both.

    With `twins`, nodes N+m..N+2m-1 are the canaries' twins: same features and ties, another label,
    always training nodes. The training graph holds the ties of twins and included canaries and marks
    them as training nodes; the query graph holds every tie. Both share all node attributes.
    """
    n, m = data.num_nodes, s.num_canaries
    copies = 2 if s.twins else 1
    x_cpu = data.x.detach().cpu()
    direction = torch.randn(m, x_cpu.size(1), generator=generator)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-12)
    std = x_cpu.std(0).clamp(min=1e-6)
    x_canary = x_cpu.mean(0) + s.feature_scale * std * direction
    num_classes = int(data.y.max()) + 1
    y_canary = torch.randint(num_classes, (m,), generator=generator)
    y_twin = (y_canary + torch.randint(1, max(num_classes, 2), (m,), generator=generator)) % num_classes
    degrees = torch.full((m,), s.degree, dtype=torch.long)
    degrees[torch.randperm(m, generator=generator)[: s.num_high]] = s.high_degree
    canary, tie = draw_ties(m, degrees, n, generator)
    include = torch.rand(m, generator=generator) < 0.5

    device = data.x.device
    first_tie = tie[torch.searchsorted(canary, torch.arange(m))].repeat(copies)  # ties are grouped by canary
    extra = torch.cat([include, torch.ones(m, dtype=torch.bool)])[: copies * m]
    grown = with_edges(data, data.edge_index)
    grown.num_nodes = n + copies * m
    for key in list(data.keys()):
        value = data[key]
        if key == "x":
            grown.x = torch.cat([data.x, x_canary.repeat(copies, 1).to(device, data.x.dtype)])
        elif key in ("y", "y_true"):
            grown[key] = torch.cat([value, torch.cat([y_canary, y_twin])[: copies * m].to(device, value.dtype)])
        elif key == "train_mask":
            grown[key] = torch.cat([value, extra.to(device)])
        elif key in COPIED and isinstance(value, Tensor) and value.size(0) == n:
            grown[key] = torch.cat([value, value[first_tie.to(value.device)]])
        elif isinstance(value, Tensor) and value.dtype == torch.bool and value.size(0) == n:
            grown[key] = torch.cat([value, value.new_zeros(copies * m)])  # val/test/inductive masks: in none

    def with_ties(chosen: Tensor) -> Data:
        """`grown` with the ties of the chosen canaries (and of every twin) added in both directions."""
        ends = [torch.stack([canary[chosen] + n, tie[chosen]])]
        if s.twins:
            ends.append(torch.stack([canary + n + m, tie]))
        ends = torch.cat(ends, dim=1).to(device)
        return with_edges(grown, coalesce(torch.cat([data.edge_index, ends, ends.flip(0)], dim=1),
                                          num_nodes=n + copies * m))

    return with_ties(include[canary]), with_ties(torch.ones_like(canary, dtype=torch.bool)), include


def canary_scores(logits: Tensor, y: Tensor, first: int, count: int) -> Tensor:
    """Log probability of each canary's label (rows `first`..`first + count - 1`) under the released logits."""
    logp = logits[first:first + count].log_softmax(dim=-1)
    return logp.gather(1, y[first:first + count, None]).squeeze(1)


def run(ctx: AttackContext) -> dict[str, Any]:
    """Insert node canaries, re-run the mechanism `runs` times, score every canary and bound epsilon."""
    s = validate(ctx.cfg, ctx.data)
    n = ctx.data.num_nodes
    scores, labels, epsilons, deltas = [], [], [], []
    for r in range(s.runs):  # each run is one training of the mechanism: a handful, not a loop over nodes
        train_graph, query_graph, include = draw_canaries(ctx.data, s, ctx.generator(11 + 101 * r))
        target = retrain_target(ctx.cfg.target, train_graph, ctx.seed + 7919 * r)
        with torch.no_grad():
            logits = predict_logits(target.model, query_graph)
        scores.append(canary_scores(logits, query_graph.y, n, s.num_canaries).cpu())
        labels.append(include)
        epsilons.append(target.privacy.get("epsilon"))
        deltas.append(float(target.privacy.get("delta") or 0.0))
    score, label = torch.cat(scores).double().numpy(), torch.cat(labels).numpy()
    result = audit_scores(score, label, max(deltas), seed=ctx.seed)
    out: dict[str, Any] = result.as_metrics("attack_canary_nodes")
    total = score.size
    out["attack_canary_nodes_auroc"] = auroc(label, score) if 0 < label.sum() < total else None
    out["attack_canary_nodes_score_gap"] = float(score[label].mean() - score[~label].mean()) \
        if 0 < label.sum() < total else None
    # the re-run mechanisms' own epsilon (N and the training count differ slightly from the main run's)
    out["attack_canary_nodes_target_epsilon"] = None if None in epsilons else float(max(epsilons))
    out["attack_canary_nodes_runs"] = s.runs
    out["attack_canary_nodes_canaries"] = total
    out["attack_canary_nodes_eps_lower_basis"] = "independent" if s.num_canaries == 1 else "dependent"
    shares = (f"{s.num_canaries - s.num_high} of degree {s.degree} and {s.num_high} of degree {s.high_degree}"
              if s.num_high else f"all of degree {s.degree}")
    out["attack_canary_nodes_eps_lower_trials"] = (
        f"{total} node canaries ({s.runs} run(s) x {s.num_canaries}: {shares}; features {s.feature_scale:g} std "
        f"from the mean, random labels) each inserted independently with probability 1/2, one re-run of the "
        f"mechanism per run; threshold on {total // 2}, bound on {total - total // 2}; "
        + ("one canary per training run" if s.num_canaries == 1 else "canaries of a run share one model"))
    return out


__all__ = ["Settings", "canary_scores", "draw_canaries", "draw_ties", "run", "validate"]
