"""`gnnrisk.run(data=graph)` / `gnnrisk.sweep(data=graph)`: a user's own Data, checked, pseudonymised, recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Data

import gnnrisk
from gnnrisk.data.in_memory import fingerprint, given_graph, load_in_memory
from gnnrisk.errors import ConfigError, DataError

TINY = ["train.epochs=20", "threads=1"]


def two_blocks(n: int = 120, seed: int = 0) -> Data:
    """Two classes: dense ties inside each, features that say the class, a protected group and a stray field."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    same = y[:, None] == y[None, :]
    adj = torch.rand(n, n, generator=g) < torch.where(same, 0.08, 0.01)
    adj = torch.triu(adj, diagonal=1)
    edge_index = adj.nonzero().t()
    x = torch.nn.functional.one_hot(y, 2).float() + 0.8 * torch.randn(n, 2, generator=g)
    return Data(x=x, edge_index=edge_index, y=y, group=torch.arange(n) % 3, names=[f"p{i}" for i in range(n)])


def cfg(**kwargs):
    base = {"name": "in_memory", "fingerprint": None, "pseudonym_key": None,
            "split": {"train": 0.6, "val": 0.2, "inductive_fraction": 0.5}}
    return OmegaConf.merge(base, kwargs)


def test_loader_keeps_the_graph_up_to_a_relabelling():
    """Pseudonymised: the same multiset of (features, label, group) rows and the same graph up to the
    permutation; undirected, loop-free; stray fields dropped; splits from the seed, not the key."""
    given = two_blocks()
    with given_graph(given):
        a = load_in_memory(cfg(pseudonym_key=1), seed=0)
        b = load_in_memory(cfg(pseudonym_key=2), seed=0)
    assert not hasattr(a, "names") and a.name == "in_memory"
    perm = torch.empty(given.num_nodes, dtype=torch.long)
    # recover the relabelling from the features (continuous: distinct rows)
    order = {tuple(row.tolist()): i for i, row in enumerate(given.x)}
    for j, row in enumerate(a.x):
        perm[order[tuple(row.tolist())]] = j
    assert torch.equal(a.y[perm], given.y) and torch.equal(a.group[perm], given.group)
    mapped = {(int(perm[u]), int(perm[v])) for u, v in given.edge_index.t()}
    both = mapped | {(v, u) for u, v in mapped}
    assert set(map(tuple, a.edge_index.t().tolist())) == both
    # the split follows the nodes, whatever the key: the same given nodes are training nodes
    perm_b = torch.empty_like(perm)
    for j, row in enumerate(b.x):
        perm_b[order[tuple(row.tolist())]] = j
    assert torch.equal(a.train_mask[perm], b.train_mask[perm_b])
    assert int(a.train_mask.sum()) == 72 and int(a.val_mask.sum()) == 24


def test_given_masks_are_kept():
    """A graph with its own split keeps it (carried through the relabelling)."""
    given = two_blocks()
    given.train_mask = torch.arange(120) < 10
    given.val_mask = (torch.arange(120) >= 10) & (torch.arange(120) < 20)
    given.test_mask = torch.arange(120) >= 20
    with given_graph(given):
        data = load_in_memory(cfg(), seed=3)
    assert int(data.train_mask.sum()) == 10 and int(data.val_mask.sum()) == 10 and int(data.test_mask.sum()) == 100


@pytest.mark.parametrize("change, match", [
    (lambda d: setattr(d, "y", d.y.float()), r"y must be an integer tensor of class indices of shape \[120\]"),
    (lambda d: setattr(d, "x", d.x[0]), r"x must be a 2-D tensor"),
    (lambda d: setattr(d, "edge_index", d.edge_index + 500), "refers to nodes outside 0..119"),
    (lambda d: setattr(d, "edge_index", d.edge_index.t()), r"edge_index must be an integer tensor \[2, E\]"),
    (lambda d: setattr(d, "train_mask", torch.ones(120, dtype=torch.bool)), "has train_mask but not val_mask, test_mask"),
    (lambda d: setattr(d, "group", -d.group - 1), "group indices 0..G-1"),
])
def test_bad_graph_is_one_line(change, match):
    """A graph that breaks the contract is refused in one line before anything runs."""
    given = two_blocks()
    change(given)
    with pytest.raises(DataError, match=match) as err:
        with given_graph(given):
            pass
    assert "\n" not in str(err.value)


def test_not_a_data_object_is_refused():
    with pytest.raises(ConfigError, match="expected a torch_geometric.data.Data"):
        with given_graph({"x": 1}):
            pass


def test_loader_outside_a_call_is_refused():
    """`data=in_memory` without a graph (the command line) is one line pointing to data=edgelist."""
    with pytest.raises(ConfigError, match="only from Python: gnnrisk.run") as err:
        load_in_memory(cfg(), seed=0)
    assert err.value.field == "data.name"


def test_fingerprint_names_the_graph():
    """Equal graphs share a fingerprint; a changed label changes it; a mismatch with the config is refused."""
    a, b = two_blocks(), two_blocks()
    assert fingerprint(a) == fingerprint(b) and fingerprint(a).startswith("sha256_")
    b.y[0] = 1 - b.y[0]
    assert fingerprint(a) != fingerprint(b)
    with given_graph(a), pytest.raises(ConfigError, match="data.fingerprint"):
        load_in_memory(cfg(fingerprint=fingerprint(b)), seed=0)


def test_run_trains_on_the_given_graph_and_records_it(tmp_path):
    """gnnrisk.run(data=graph): a normal run folder, the config naming data=in_memory and the fingerprint,
    the same numbers for the same key and seed, and a GCN that learns the blocks."""
    given = two_blocks()
    args = ["model=gcn", "data.pseudonym_key=7", *TINY]
    first = gnnrisk.run(args, run_dir=tmp_path / "a", data=given)
    again = gnnrisk.run(args, run_dir=tmp_path / "b", data=given)
    assert first.metrics["dataset"] == "in_memory" and first.metrics["test_acc"] > 0.8
    assert first.metrics["test_acc"] == again.metrics["test_acc"]
    saved = OmegaConf.load(tmp_path / "a" / "config.yaml")
    assert saved.data.name == "in_memory" and saved.data.fingerprint == fingerprint(given)
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["num_nodes"] == 120


def test_run_refuses_another_dataset_with_a_given_graph(tmp_path):
    with pytest.raises(ConfigError, match="runs as data=in_memory; remove the override 'data=planetoid'"):
        gnnrisk.run(["data=planetoid"], run_dir=tmp_path / "r", data=two_blocks())


def test_sweep_takes_the_given_graph(tmp_path):
    """gnnrisk.sweep(grid, data=graph): every job on the given graph."""
    runs = gnnrisk.sweep({"model": ["gcn", "mlp"]}, sweep_dir=tmp_path / "s", overrides=TINY, data=two_blocks())
    assert len(runs) == 2 and set(runs["dataset"]) == {"in_memory"}


@pytest.mark.slow  # a real process: about 9 s
def test_cli_refuses_in_memory_in_one_line(tmp_path):
    """`gnnrisk-run data=in_memory` on the command line: exit 2, one line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "gnnrisk", "data=in_memory", f"hydra.run.dir={tmp_path / 'r'}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("gnnrisk: error: data.name='in_memory' is not allowed: "
                                                           "only from Python")


def test_split_shares_are_checked_even_when_the_graph_brings_masks():
    """`data.split` is validated before training whether or not it is used: a bad share is one line."""
    given = two_blocks()
    given.train_mask = torch.arange(120) < 10
    given.val_mask = (torch.arange(120) >= 10) & (torch.arange(120) < 20)
    given.test_mask = torch.arange(120) >= 20
    with given_graph(given), pytest.raises(ConfigError, match="data.split.train"):
        load_in_memory(cfg(split={"train": 1.5, "val": 0.2, "inductive_fraction": 0.5}), seed=0)
