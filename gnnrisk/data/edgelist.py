"""A user's own graph from CSV files (edge list + node table), anonymised on load.

Original identifiers only serve to join the two files: nodes get a random index, identifier
columns are dropped, and nothing on the returned `Data` holds or maps back to a raw identifier.
The random index is keyed by `data.pseudonym_key`: null (the default) draws a fresh key from the
operating system that is never stored, so no one (the user included) can map a node of the outputs
back to a row of the input; an integer key makes the mapping repeatable and reversible by anyone who
has the key and the input. The splits are drawn from the run's seed in the order of the input rows,
so they do not depend on the key. Messages name counts, line numbers and configured column names,
never values from the files.
"""

from __future__ import annotations

import csv
import logging
import secrets
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, ListConfig
from pandas.api.types import is_numeric_dtype
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from gnnrisk.data.splits import inductive_masks, random_masks
from gnnrisk.errors import ConfigError, DataError, check_choice, check_number

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5  # line numbers quoted in an error message


def load_edgelist(cfg: DictConfig, seed: int) -> Data:
    """Load, clean and anonymise a user graph from `cfg.edges_path` and `cfg.nodes_path`."""
    edges_path = _path(cfg, "edges_path", required=True)
    nodes_path = _path(cfg, "nodes_path", required=False)
    src_col = _column_name(cfg, "source_column", "source")
    dst_col = _column_name(cfg, "target_column", "target")
    id_col = _column_name(cfg, "id_column", "id")
    label_col = _column_name(cfg, "label_column", "label")
    group_col = _column_name(cfg, "group_column", None, optional=True)
    drop = _column_list(cfg, "drop_columns", optional=False)
    features = _column_list(cfg, "feature_columns", optional=True)
    missing_labels = check_choice("data.missing_labels", cfg.get("missing_labels", "drop"),
                                  ("drop", "error"))
    key = _pseudonym_key(cfg)
    split = cfg.get("split") or {}
    train, val = split.get("train", 0.6), split.get("val", 0.2)
    fraction = check_number("data.split.inductive_fraction", split.get("inductive_fraction", 0.5),
                            low=0.0, high=1.0, low_open=True, high_open=True)
    for col in (label_col, group_col):
        if col is not None and col in drop:
            raise ConfigError("data.drop_columns", drop, f"must not contain {col!r}: it is the "
                              "label or group column")
    if features is not None:
        clash = [c for c in features if c in drop or c in (id_col, label_col, group_col)]
        if clash:
            raise ConfigError("data.feature_columns", features, "must not name the id, label, "
                              f"group or dropped columns (found {', '.join(clash)})")
    if nodes_path is None:
        raise DataError("data.nodes_path is not set: a node table (CSV) with a label column "
                        f"({label_col!r}) is required for training; an edge list alone has no labels")

    edges = _read_csv(edges_path, "data.edges_path", [src_col, dst_col], str_columns=[src_col, dst_col])
    nodes = _read_csv(nodes_path, "data.nodes_path",
                      [id_col, label_col] + ([group_col] if group_col else []), str_columns=[id_col])
    unknown_drop = [c for c in drop if c not in nodes.columns and c not in edges.columns]
    if unknown_drop:
        raise DataError(f"data.drop_columns: column(s) {', '.join(unknown_drop)} found in neither "
                        f"{edges_path} nor {nodes_path}; columns found: "
                        f"{_listing(nodes.columns)} (nodes), {_listing(edges.columns)} (edges)")
    # Identifier columns go first, before anything else looks at the table; the id column itself
    # is needed to join the edges and is never used beyond that.
    nodes = nodes.drop(columns=[c for c in drop if c in nodes.columns and c != id_col])

    ids = _node_ids(nodes, id_col, nodes_path)
    keep = _labelled(nodes, label_col, nodes_path, missing_labels)
    lines = np.flatnonzero(keep) + 2  # file line of each kept node row (line 1 is the header)
    dropped_ids, ids, nodes = ids[~keep], ids[keep], nodes.loc[keep].reset_index(drop=True)
    if group_col is not None:
        _reject_rows(nodes[group_col].isna().to_numpy(), nodes_path,
                     f"have no value in the group column {group_col!r}", lines)
    x = _features(nodes, features, (id_col, label_col, group_col), nodes_path)
    y = _labels(nodes[label_col], label_col, nodes_path)

    src, dst = _edge_endpoints(edges, src_col, dst_col, ids, dropped_ids, edges_path, nodes_path)
    num_nodes = len(ids)
    perm = torch.randperm(num_nodes, generator=_pseudonym_generator(key))  # row i -> node perm[i]
    edge_index = _clean_edges(perm[src], perm[dst], num_nodes, edges_path)

    order = torch.argsort(perm)  # node j <- row order[j]
    data = Data(x=x[order], edge_index=edge_index, y=y[order])
    if group_col is not None:
        data.group = _codes(nodes[group_col])[order]
    generator = torch.Generator().manual_seed(seed)  # splits by input row, then carried to the pseudonyms
    masks = (*random_masks(num_nodes, train, val, generator), *inductive_masks(num_nodes, generator, fraction))
    data.train_mask, data.val_mask, data.test_mask, data.ind_train_mask, data.ind_test_mask = (
        mask[order] for mask in masks)
    data.name = "edgelist"
    return data


def _pseudonym_key(cfg: DictConfig) -> int | None:
    """`data.pseudonym_key`: null (a fresh, unstored key) or a non-negative integer (repeatable, reversible)."""
    key = cfg.get("pseudonym_key")
    if key is None:
        return None
    return int(check_number("data.pseudonym_key", key, low=0, high=2**63 - 1, integer=True))


def _pseudonym_generator(key: int | None) -> torch.Generator:
    """The generator of the re-indexing: keyed, or seeded from the OS and forgotten with this frame."""
    return torch.Generator().manual_seed(secrets.randbits(63) if key is None else key)


def _labels(column: pd.Series, label_col: str, path: Path) -> torch.Tensor:
    """Class codes 0..C-1 of the label column, refusing what is not a class label."""
    values = column.to_numpy()
    if is_numeric_dtype(column) and not np.array_equal(values, np.round(values)):
        raise DataError(f"{path}: label column {label_col!r} holds non-integer numbers; node classification "
                        "needs class labels (integers or text), not a continuous score")
    y = _codes(column)
    classes = int(y.max()) + 1
    if classes < 2:
        raise DataError(f"{path}: label column {label_col!r} holds a single class; "
                        "node classification needs at least two")
    if classes > len(column) / 2:
        raise DataError(f"{path}: label column {label_col!r} holds {classes} distinct values among "
                        f"{len(column)} labelled nodes; a class label repeats across nodes (is it an "
                        "identifier or a score column?)")
    return y


def _path(cfg: DictConfig, key: str, required: bool) -> Path | None:
    """Read a file path field; ConfigError if it is required and unset or not a string."""
    value = cfg.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"data.{key}", value, "expected the path of a CSV file")
    return Path(value).expanduser()


def _column_name(cfg: DictConfig, key: str, default: str | None, optional: bool = False) -> str | None:
    """Read a column-name field: a non-empty string (or null when optional)."""
    value = cfg.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"data.{key}", value, "expected a column name" + (" or null" if optional else ""))
    return value


def _column_list(cfg: DictConfig, key: str, optional: bool) -> list[str] | None:
    """Read a list-of-column-names field (null allowed when optional, else null means empty)."""
    value = cfg.get(key)
    if value is None:
        return None if optional else []
    if not isinstance(value, (list, tuple, ListConfig)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"data.{key}", value, "expected a list of column names"
                          + (" or null" if optional else ""))
    return list(value)


def _read_csv(path: Path, field: str, required: Sequence[str], str_columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV file, turning every way it can fail into a DataError that names the file."""
    if not path.exists():
        raise DataError(f"{field}: file {path} does not exist")
    if not path.is_file():
        raise DataError(f"{field}: {path} is not a file")
    try:
        with warnings.catch_warnings():
            # Rows wider than the header would silently become an index (or be cut): refuse them.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # Identifiers are read as text so ids such as 007 and 7 stay distinct and match across files.
            df = pd.read_csv(path, dtype={c: str for c in str_columns}, skipinitialspace=True,
                             index_col=False)
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{field}: file {path} is empty") from err
    except pd.errors.ParserWarning as err:
        raise DataError(f"{field}: cannot read {path} as CSV (some rows have more fields than "
                        "the header)") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{field}: cannot read {path} as CSV (not UTF-8 text)") from err
    except pd.errors.ParserError as err:
        # pandas' tokenizer messages give line and field counts, never the fields themselves
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{field}: cannot read {path} as CSV ({first})") from err
    except ValueError as err:  # a conversion error would quote a value from the file: say only what failed
        raise DataError(f"{field}: cannot read {path} as CSV (a value cannot be converted: "
                        f"{type(err).__name__})") from err
    except OSError as err:
        raise DataError(f"{field}: cannot open {path} ({err.strerror or err})") from err
    df.columns = [str(c).strip() for c in df.columns]
    absent = [c for c in required if c not in df.columns]
    if absent:
        # Without a header the first line is a person's row: name only the configured columns.
        present = [c for c in required if c in df.columns]
        raise DataError(f"{field}: {path} has no column {', '.join(map(repr, absent))} (its first line has "
                        f"{len(df.columns)} fields" + (f"; found {', '.join(map(repr, present))}" if present else "")
                        + "); the first line must be a header naming the columns set in data.*_column")
    # pandas renames a repeated name to `name.1`: look at the header as written (a real header by now)
    with open(path, newline="", encoding="utf-8") as fh:
        header = [str(c).strip() for c in next(csv.reader(fh), [])]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise DataError(f"{field}: {path} has {len(duplicated)} column name(s) used more than once, e.g. "
                        f"{duplicated[0]!r}; give every column its own name")
    if df.empty:
        raise DataError(f"{field}: file {path} has a header but no rows")
    return df


def _node_ids(nodes: pd.DataFrame, id_col: str, path: Path) -> pd.Index:
    """The node table's ids as a unique Index, rejecting missing and duplicate ids."""
    ids = nodes[id_col].str.strip()
    _reject_rows(ids.isna() | (ids == ""), path, f"have no value in the id column {id_col!r}")
    _reject_rows(ids.duplicated(keep="first"), path, f"repeat an id already used in column {id_col!r}")
    return pd.Index(ids.to_numpy())


def _labelled(nodes: pd.DataFrame, label_col: str, path: Path, mode: str) -> np.ndarray:
    """Mask of node rows to keep: those with a label (mode drop), or all after checking (mode error)."""
    missing = nodes[label_col].isna().to_numpy()
    if missing.any() and mode == "error":
        _reject_rows(missing, path, f"have no label in column {label_col!r} "
                     "(set data.missing_labels=drop to remove these nodes)")
    if missing.all():
        raise DataError(f"{path}: no node has a label in column {label_col!r}")
    if missing.any():
        log.warning("dropped %d node(s) without a label in %s, and their edges", int(missing.sum()), path)
    return ~missing


def _features(nodes: pd.DataFrame, features: list[str] | None, reserved: Sequence[str | None],
              path: Path) -> torch.Tensor:
    """The feature matrix from the chosen (or all remaining) columns: numeric, without NaN."""
    if features is None:
        features = [c for c in nodes.columns if c not in reserved]
    absent = [c for c in features if c not in nodes.columns]
    if absent:
        raise DataError(f"data.feature_columns: {path} has no column {', '.join(map(repr, absent))}; "
                        f"columns found: {_listing(nodes.columns)}")
    if not features:
        log.warning("%s has no feature column: every node gets the constant feature 1", path)
        return torch.ones(len(nodes), 1)
    table = nodes[features]
    text = [c for c in features if not is_numeric_dtype(table[c])]
    if text:
        raise DataError(f"{path}: feature column(s) {', '.join(map(repr, text))} are not numeric; "
                        "list identifier columns in data.drop_columns, one-hot encode categories, "
                        "or choose data.feature_columns")
    values = table.to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(values)
    if bad.any():
        counts = bad.sum(axis=0)
        named = ", ".join(f"{c!r} ({int(n)} rows)" for c, n in zip(features, counts) if n)
        raise DataError(f"{path}: feature column(s) {named} hold NaN (empty) or infinite values; "
                        "impute or drop them first")
    return torch.from_numpy(values).float()


def _codes(column: pd.Series) -> torch.Tensor:
    """Map the sorted unique values of a column to 0..K-1."""
    _, codes = np.unique(column.to_numpy(), return_inverse=True)
    return torch.from_numpy(codes.reshape(-1)).long()


def _edge_endpoints(edges: pd.DataFrame, src_col: str, dst_col: str, ids: pd.Index, dropped_ids: pd.Index,
                    edges_path: Path, nodes_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Node-table row index of each edge's endpoints; edges to unlabeled (dropped) nodes are removed."""
    src = edges[src_col].str.strip()
    dst = edges[dst_col].str.strip()
    _reject_rows((src.isna() | (src == "") | dst.isna() | (dst == "")).to_numpy(), edges_path,
                 f"lack a value in column {src_col!r} or {dst_col!r}")
    s, d = ids.get_indexer(src), ids.get_indexer(dst)
    gone = src.isin(dropped_ids).to_numpy() | dst.isin(dropped_ids).to_numpy()
    unknown = ((s < 0) | (d < 0)) & ~gone
    if gone.any():
        log.warning("removed %d edge(s) of %s that touch nodes dropped for lack of a label",
                    int(gone.sum()), edges_path)
    if unknown.any():
        raise DataError(f"{edges_path}: {int(unknown.sum())} edge(s) refer to ids that are not in the "
                        f"node table {nodes_path} ({_lines(unknown)})")
    return torch.from_numpy(s[~gone]).long(), torch.from_numpy(d[~gone]).long()


def _clean_edges(src: torch.Tensor, dst: torch.Tensor, num_nodes: int, path: Path) -> torch.Tensor:
    """Remove self-loops, merge duplicate and reversed edges, and return both directions, coalesced."""
    loops = src == dst
    if loops.any():
        log.warning("removed %d self-loop(s) from %s", int(loops.sum()), path)
    src, dst = src[~loops], dst[~loops]
    if src.numel() == 0:
        raise DataError(f"{path}: no edges left after removing self-loops and edges of dropped "
                        "nodes; a graph model needs at least one edge")
    lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
    pairs = torch.unique(lo * num_nodes + hi)
    if pairs.numel() < src.numel():
        log.warning("merged %d duplicate edge(s) in %s (the graph is undirected, so a->b and b->a "
                    "are the same edge)", src.numel() - pairs.numel(), path)
    edge_index = torch.stack([pairs // num_nodes, pairs % num_nodes])
    return to_undirected(edge_index, num_nodes=num_nodes)


def _reject_rows(bad: Any, path: Path, problem: str, lines: np.ndarray | None = None) -> None:
    """DataError naming how many rows of `path` have `problem`, with a few line numbers."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} row(s) {problem} ({_lines(bad, lines)})")


def _lines(bad: np.ndarray, lines: np.ndarray | None = None) -> str:
    """Quote a few file line numbers of flagged rows (by default row i is on line i + 2)."""
    rows = np.flatnonzero(bad)
    found = (rows + 2 if lines is None else lines[rows])[:MAX_EXAMPLES]
    more = ", ..." if rows.size > MAX_EXAMPLES else ""
    return "line " + ", ".join(map(str, found)) + more


def _listing(columns: Sequence[Any]) -> str:
    """Comma-separated column names for messages."""
    return ", ".join(map(str, columns)) or "(none)"
