"""Protocol studies: a named study that sets a paper's published settings declares the datasets they are for.

`experiment=gap_protocol` and `experiment=dpdgc_protocol` carry a top-level `protocol` mapping (name, the
paper's code it follows, the datasets its settings were written for). A run of such a study on any other
dataset is refused in one line before training (and before a sweep's first job), rather than run with
settings its paper never used there.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from gnnrisk.errors import ConfigError


def dataset_id(data_cfg: Any) -> str | None:
    """The dataset a data config loads: `data.dataset` for benchmark loaders, else the member's name."""
    if data_cfg is None:
        return None
    return data_cfg.get("dataset", data_cfg.get("name"))


def check_protocol(cfg: DictConfig) -> None:
    """Refuse a protocol study on a dataset its settings were not written for (one line naming the field)."""
    protocol = cfg.get("protocol")
    if protocol is None:
        return
    if not hasattr(protocol, "get") or not protocol.get("name") or not protocol.get("datasets"):
        raise ConfigError("protocol", protocol, "expected null or a mapping with name and datasets (a list)")
    data_cfg = cfg.get("data")
    dataset = dataset_id(data_cfg)
    allowed = [str(d) for d in protocol.datasets]
    if dataset not in allowed:
        field = "data.dataset" if data_cfg is not None and "dataset" in data_cfg else "data"
        raise ConfigError(field, dataset, f"experiment={protocol.name} sets its paper's published settings for "
                          f"{', '.join(allowed)} only ({protocol.get('source', 'see its config')}); "
                          "for another dataset write a study with that paper's settings for it")
