"""Edge-list loader: anonymisation, cleaning (duplicates, loops) and a clear error for each bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.utils import coalesce, contains_self_loops, is_undirected

from gnnrisk.data import build_dataset
from gnnrisk.data.edgelist import load_edgelist
from gnnrisk.errors import ConfigError, DataError

EMAILS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
          "erin@example.com", "frank@example.com", "grace@example.com", "heidi@example.com"]
PHONES = [5550101, 5550102, 5550103, 5550104, 5550105, 5550106, 5550107, 5550108]
RING = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 0), (0, 4)]


def _write(path: Path, text: str) -> Path:
    """Write a CSV file and return its path."""
    path.write_text(text)
    return path


def _nodes_csv(tmp_path: Path, rows: list[str] | None = None,
               header: str = "id,phone,age,score,label,gender") -> Path:
    """A node table keyed by e-mail, with a numeric identifier (phone) and two features."""
    if rows is None:
        rows = [f"{e},{p},{20 + i},{i / 10},{'high' if i % 2 else 'low'},{'f' if i < 3 else 'm'}"
                for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    return _write(tmp_path / "nodes.csv", header + "\n" + "\n".join(rows) + "\n")


def _edges_csv(tmp_path: Path, pairs: list[tuple[int, int]] | None = None, extra: str = "") -> Path:
    """An edge list over the e-mail ids (plus raw extra lines)."""
    pairs = RING if pairs is None else pairs
    body = "\n".join(f"{EMAILS[a]},{EMAILS[b]}" for a, b in pairs)
    return _write(tmp_path / "edges.csv", "source,target\n" + body + "\n" + extra)


def _cfg(tmp_path: Path, **extra: object) -> DictConfig:
    """The default edgelist config over the test files."""
    base = {"name": "edgelist", "edges_path": str(tmp_path / "edges.csv"),
            "source_column": "source", "target_column": "target",
            "nodes_path": str(tmp_path / "nodes.csv"), "id_column": "id", "label_column": "label",
            "group_column": "gender", "feature_columns": None, "drop_columns": ["phone"],
            "missing_labels": "drop", "split": {"train": 0.5, "val": 0.25, "inductive_fraction": 0.5}}
    return OmegaConf.create({**base, **extra})


def _expect(cfg: DictConfig, *fragments: str, error: type = DataError) -> str:
    """Load and assert that `error` is raised with every fragment in its message."""
    with pytest.raises(error) as err:
        load_edgelist(cfg, seed=0)
    msg = str(err.value)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    assert not any(e in msg for e in EMAILS), "an identifier leaked into the message"
    return msg


def test_loads_and_meets_contract(tmp_path: Path) -> None:
    """A clean graph loads: 8 nodes, 9 undirected edges, labels and groups coded by sorted value."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    data = build_dataset(_cfg(tmp_path, group_column="gender"), seed=0)
    assert data.num_nodes == 8 and data.edge_index.size(1) == 18
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert torch.equal(coalesce(data.edge_index, num_nodes=8), data.edge_index)
    assert data.x.dtype == torch.float32 and data.x.shape == (8, 2)  # age, score
    assert data.y.dtype == torch.long and sorted(data.y.tolist()) == [0] * 4 + [1] * 4  # high=0, low=1
    assert data.group.dtype == torch.long and sorted(data.group.tolist()) == [0] * 3 + [1] * 5
    assert (data.train_mask.sum(), data.val_mask.sum(), data.test_mask.sum()) == (4, 2, 2)
    assert not (data.ind_train_mask & data.ind_test_mask).any()
    assert (data.ind_train_mask | data.ind_test_mask).all()
    assert data.name == "edgelist"


def test_structure_survives_reindexing(tmp_path: Path) -> None:
    """Each node keeps its own features, label, group and neighbours after the random re-indexing."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    data = load_edgelist(_cfg(tmp_path, group_column="gender"), seed=4)
    age = data.x[:, 0].long() - 20  # age = 20 + original row
    assert sorted(age.tolist()) == list(range(8))
    assert torch.equal(data.y, (age % 2 == 0).long())  # odd rows are 'high' = class 0
    assert torch.equal(data.group, (age >= 3).long())
    original = {tuple(sorted(p)) for p in RING}
    loaded = {tuple(sorted((int(age[a]), int(age[b])))) for a, b in data.edge_index.t().tolist()}
    assert loaded == original


def test_anonymised_no_identifier_anywhere(tmp_path: Path) -> None:
    """No e-mail or phone number appears in the repr, any attribute, or any tensor; order is shuffled."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    data = load_edgelist(_cfg(tmp_path), seed=0)
    text = repr(data) + " ".join(f"{k}={v!r}" for k, v in data.to_dict().items())
    assert not any(e in text or e.split("@")[0] in text for e in EMAILS)
    assert set(data.keys()) == {"x", "edge_index", "y", "train_mask", "val_mask", "test_mask",
                                "ind_train_mask", "ind_test_mask", "group", "name"}
    for value in data.to_dict().values():
        if isinstance(value, torch.Tensor):
            assert not torch.isin(value.double(), torch.tensor(PHONES, dtype=torch.double)).any()
        else:
            assert isinstance(value, str) and value == "edgelist"
    orders = {tuple((load_edgelist(_cfg(tmp_path, pseudonym_key=k), seed=0).x[:, 0] - 20).long().tolist())
              for k in range(4)}
    assert len(orders) > 1  # node order follows the pseudonym key, not the file


def test_id_column_may_be_listed_in_drop_columns(tmp_path: Path) -> None:
    """Marking the id column (or edge columns) as identifiers is allowed: it is only used to join."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    data = load_edgelist(_cfg(tmp_path, drop_columns=["id", "phone", "source"]), seed=0)
    assert data.num_nodes == 8 and data.x.shape == (8, 2)


def test_same_key_and_seed_same_data(tmp_path: Path) -> None:
    """With an explicit pseudonym key the re-indexing is repeatable; the splits depend only on the seed."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    a, b = (load_edgelist(_cfg(tmp_path, pseudonym_key=5), seed=9) for _ in range(2))
    for key in ("x", "edge_index", "y", "train_mask", "ind_train_mask"):
        assert torch.equal(a[key], b[key])


def test_fresh_key_changes_pseudonyms_not_splits(tmp_path: Path) -> None:
    """Without a key every load re-indexes afresh, yet the same input rows (ages) land in each split."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    loads = [load_edgelist(_cfg(tmp_path), seed=9) for _ in range(6)]
    orders = {tuple(d.x[:, 0].long().tolist()) for d in loads}
    assert len(orders) > 1
    for split in ("train_mask", "val_mask", "test_mask", "ind_train_mask"):
        rows = {tuple(sorted(d.x[d[split], 0].long().tolist())) for d in loads}
        assert len(rows) == 1, split


@pytest.mark.parametrize("key", [-1, 1.5, "abc", 2**63])
def test_bad_pseudonym_key(tmp_path: Path, key: object) -> None:
    """A key that is not a non-negative 63-bit integer is a one-line ConfigError."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, pseudonym_key=key), "data.pseudonym_key", error=ConfigError)


def test_duplicates_and_self_loops_removed_with_warnings(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Repeated and reversed edges merge, self-loops go, and each is counted in a warning."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path, RING + [(0, 1), (1, 0), (2, 1), (3, 3), (5, 5)])
    with caplog.at_level(logging.WARNING, logger="gnnrisk.data.edgelist"):
        data = load_edgelist(_cfg(tmp_path), seed=0)
    assert data.edge_index.size(1) == 18
    assert "merged 3 duplicate edge(s)" in caplog.text
    assert "removed 2 self-loop(s)" in caplog.text
    assert not any(e in caplog.text for e in EMAILS)


def test_unknown_ids_name_count_and_lines_not_ids(tmp_path: Path) -> None:
    """Edges to ids missing from the node table give a DataError with a count and line numbers."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path, extra="alice@example.com,zoe@example.com\nyann@example.com,bob@example.com\n")
    msg = _expect(_cfg(tmp_path), "2 edge(s)", "not in the node table", "line 11, 12")
    assert "zoe" not in msg and "yann" not in msg


def test_no_node_table_requires_labels(tmp_path: Path) -> None:
    """Without a node table there are no labels: a DataError says a table with labels is required."""
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, nodes_path=None), "data.nodes_path", "label column", "required")


def test_non_numeric_feature_column(tmp_path: Path) -> None:
    """A text column left among the features is named, with drop_columns and one-hot suggested."""
    _nodes_csv(tmp_path, header="id,phone,age,score,label,city",
               rows=[f"{e},{p},{i},{i},{i % 2},city{i}" for i, (e, p) in enumerate(zip(EMAILS, PHONES))])
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, group_column=None), "'city'", "not numeric", "drop_columns", "one-hot")
    data = load_edgelist(_cfg(tmp_path, group_column=None, drop_columns=["phone", "city"]), seed=0)
    assert data.x.shape == (8, 2)


def test_explicit_feature_columns(tmp_path: Path) -> None:
    """feature_columns picks columns; unknown or reserved ones are rejected."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    data = load_edgelist(_cfg(tmp_path, feature_columns=["score"], drop_columns=[]), seed=0)
    assert data.x.shape == (8, 1)
    _expect(_cfg(tmp_path, feature_columns=["height"]), "'height'", "columns found", "age")
    _expect(_cfg(tmp_path, feature_columns=["label"]), "data.feature_columns", error=ConfigError)
    _expect(_cfg(tmp_path, feature_columns=["phone"]), "data.feature_columns", error=ConfigError)


def test_no_feature_columns_gives_constant_feature(tmp_path: Path) -> None:
    """A node table with only id and label yields one constant feature."""
    _nodes_csv(tmp_path, header="id,label", rows=[f"{e},{i % 2}" for i, e in enumerate(EMAILS)])
    _edges_csv(tmp_path)
    data = load_edgelist(_cfg(tmp_path, group_column=None, drop_columns=[]), seed=0)
    assert data.x.shape == (8, 1) and bool((data.x == 1).all())


def test_nan_features_named_with_counts(tmp_path: Path) -> None:
    """Empty feature cells give a DataError naming each column and its number of rows."""
    rows = [f"{e},{p},{'' if i < 2 else i},{'' if i == 5 else i},{i % 2},m"
            for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    _nodes_csv(tmp_path, rows=rows)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path), "'age' (2 rows)", "'score' (1 rows)", "NaN")


def test_missing_labels_drop_or_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unlabelled nodes are dropped with their edges (drop) or rejected with line numbers (error)."""
    rows = [f"{e},{p},{i},{i},{'' if i in (2, 6) else i % 2},m"
            for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    _nodes_csv(tmp_path, rows=rows)
    _edges_csv(tmp_path)
    with caplog.at_level(logging.WARNING, logger="gnnrisk.data.edgelist"):
        data = load_edgelist(_cfg(tmp_path), seed=0)
    assert data.num_nodes == 6
    assert data.edge_index.size(1) == 2 * 5  # 9 ring edges minus the 4 touching nodes 2 and 6
    assert "dropped 2 node(s)" in caplog.text and "removed 4 edge(s)" in caplog.text
    _expect(_cfg(tmp_path, missing_labels="error"), "2 row(s)", "no label", "line 4, 8")
    _expect(_cfg(tmp_path, missing_labels="keep"), "data.missing_labels", "drop, error",
            error=ConfigError)


def test_missing_group_values_rejected(tmp_path: Path) -> None:
    """A group column with empty cells is rejected, quoting the lines."""
    rows = [f"{e},{p},{i},{i},{i % 2},{'' if i == 3 else 'm'}"
            for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    _nodes_csv(tmp_path, rows=rows)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, group_column="gender"), "1 row(s)", "'gender'", "line 5")


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    """Missing, empty, header-only and malformed files each give a DataError naming the file."""
    nodes = _nodes_csv(tmp_path)
    edges = tmp_path / "edges.csv"
    _expect(_cfg(tmp_path), str(edges), "does not exist")
    _write(edges, "")
    _expect(_cfg(tmp_path), str(edges), "empty")
    _write(edges, "source,target\n")
    _expect(_cfg(tmp_path), str(edges), "no rows")
    _write(edges, 'source,target\n"a,b\n')
    _expect(_cfg(tmp_path), str(edges), "cannot read")
    _write(edges, "source,target\na,b,c,d\n")
    _expect(_cfg(tmp_path), str(edges), "cannot read", "more fields than the header")
    _write(edges, "source,target\na,b\nc,d,e\n")
    _expect(_cfg(tmp_path), str(edges), "cannot read", "line 3")
    edges.write_bytes(b"source,target\n\xff\xfe,\xff\n")
    _expect(_cfg(tmp_path), str(edges), "cannot read")
    _edges_csv(tmp_path)
    nodes.unlink()
    _expect(_cfg(tmp_path), str(nodes), "does not exist")
    _expect(_cfg(tmp_path, nodes_path=str(tmp_path)), "not a file")


def test_missing_columns_listed(tmp_path: Path) -> None:
    """A missing required column names the file, the column and the configured columns found, not the header."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, source_column="from"), "edges.csv", "'from'", "2 fields", "found 'target'")
    _expect(_cfg(tmp_path, label_column="risk"), "nodes.csv", "'risk'", "6 fields", "found 'id', 'gender'")
    _expect(_cfg(tmp_path, id_column="node"), "nodes.csv", "'node'")
    _expect(_cfg(tmp_path, group_column="ethnicity"), "'ethnicity'")
    _expect(_cfg(tmp_path, drop_columns=["phone", "ssn"]), "data.drop_columns", "ssn")


def test_duplicate_and_empty_ids_rejected(tmp_path: Path) -> None:
    """Duplicate or empty ids in the node table, or empty endpoints in edges, are rejected by line."""
    rows = [f"{e},{p},{i},{i},{i % 2},m" for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    _nodes_csv(tmp_path, rows=rows + [rows[0]])
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path), "1 row(s)", "repeat an id", "line 10")
    _nodes_csv(tmp_path, rows=rows + [",1,1,1,1,m"])
    _expect(_cfg(tmp_path), "no value in the id column", "line 10")
    _nodes_csv(tmp_path, rows=rows)
    _edges_csv(tmp_path, extra="alice@example.com,\n")
    _expect(_cfg(tmp_path), "1 row(s)", "lack a value", "line 11")


def test_empty_graph_after_cleaning(tmp_path: Path) -> None:
    """Only self-loops: nothing is left, and a DataError says so."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path, [(0, 0), (1, 1)])
    _expect(_cfg(tmp_path), "no edges left")


def test_single_class_rejected(tmp_path: Path) -> None:
    """A label column with one value cannot train a classifier."""
    _nodes_csv(tmp_path, header="id,label", rows=[f"{e},x" for e in EMAILS])
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, group_column=None, drop_columns=[]), "single class")


@pytest.mark.parametrize("field,value", [
    ("edges_path", None), ("edges_path", ""), ("source_column", ""), ("drop_columns", "phone"),
    ("feature_columns", "age"), ("drop_columns", ["label"]),
])
def test_bad_config_fields(tmp_path: Path, field: str, value: object) -> None:
    """Malformed config fields raise a ConfigError naming the field."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, **{field: value}), f"data.{field}", error=ConfigError)


def test_bad_split_is_config_error(tmp_path: Path) -> None:
    """Split fractions that leave no test set raise a ConfigError naming data.split."""
    _nodes_csv(tmp_path)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path, split={"train": 0.8, "val": 0.3}), "data.split", error=ConfigError)
    _expect(_cfg(tmp_path, split={"train": 0.5, "val": 0.2, "inductive_fraction": 1.0}),
            "data.split.inductive_fraction", error=ConfigError)


def test_headerless_file_error_quotes_no_value(tmp_path: Path) -> None:
    """A node table without a header: the message names no field of the first (a person's) row."""
    rows = [f"{e},{p},{20 + i},{i / 10},{i % 2},m" for i, (e, p) in enumerate(zip(EMAILS, PHONES))]
    _write(tmp_path / "nodes.csv", "\n".join(rows) + "\n")
    _edges_csv(tmp_path)
    msg = _expect(_cfg(tmp_path), "nodes.csv", "'id'", "header").replace(str(tmp_path), "<tmp>")  # pytest-120/...
    assert not any(v in msg for v in (EMAILS[0], str(PHONES[0]), "20", "0.0"))


def test_duplicate_column_names_rejected(tmp_path: Path) -> None:
    """Two columns with one name (pandas would silently rename the second) are refused."""
    _nodes_csv(tmp_path, header="id,phone,age,age,label,gender")
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path), "nodes.csv", "more than once", "'age'")


@pytest.mark.parametrize("labels,fragment", [([i / 7 for i in range(8)], "non-integer"),
                                             (list(range(8)), "8 distinct values")])
def test_labels_that_are_not_classes_rejected(tmp_path: Path, labels: list, fragment: str) -> None:
    """A continuous score or an identifier-like label column is not a classification target."""
    rows = [f"{e},{p},{20 + i},{i / 10},{lab},m" for i, (e, p, lab) in enumerate(zip(EMAILS, PHONES, labels))]
    _nodes_csv(tmp_path, rows=rows)
    _edges_csv(tmp_path)
    _expect(_cfg(tmp_path), "nodes.csv", "'label'", fragment)
