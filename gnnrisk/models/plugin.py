"""Models from plug-in packages: a `torch.nn.Module` class registered under entry-point group `gnnrisk.models`.

The contract (docs/plugins.md): the class is built as `cls(in_channels=F, out_channels=C, **settings)`,
`settings` being the `model` config without `name`, and its `forward(x, edge_index)` returns node
logits [N, C]. Every setting must be an argument of the constructor (or it would be silently ignored),
and every constructor argument without a default must be set; both are checked before any training.
"""

from __future__ import annotations

import inspect
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from gnnrisk.errors import ConfigError
from gnnrisk.plugins import check_constructor

SIZED_BY_DATA = ("in_channels", "out_channels")  # given by gnnrisk from the data, never from the config


def plugin_model_args(name: str, cls: Any, source: str, cfg: DictConfig) -> dict[str, Any]:
    """The constructor's settings from `cfg`, once `cls` is checked against the model contract."""
    what = f"model={name} (the plug-in {getattr(cls, '__qualname__', cls)!s} of {source})"
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ConfigError("model.name", name, f"{what} must be a torch.nn.Module class built as "
                          "cls(in_channels, out_channels, **settings)")
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(v.kind is v.VAR_KEYWORD for v in params.values())
    missing = [p for p in SIZED_BY_DATA if p not in params and not takes_any]
    if missing:
        raise ConfigError("model.name", name, f"{what} must take the arguments in_channels and out_channels "
                          f"(gnnrisk sizes them from the data); missing: {', '.join(missing)}")
    settings = {str(k): v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "name"}
    check_constructor("model", what, cls, settings, SIZED_BY_DATA)
    return settings


def build_plugin_model(name: str, cls: type[nn.Module], settings: dict[str, Any], in_channels: int,
                       out_channels: int) -> nn.Module:
    """Instantiate a plug-in model; an exception inside its constructor is the plug-in's, reported in one line."""
    try:
        model = cls(in_channels=in_channels, out_channels=out_channels, **settings)
    except Exception as err:  # the plug-in's own code failed: one line, naming it
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise ConfigError("model.name", name,
                          f"the plug-in model {cls.__qualname__} failed to build ({reason})") from None
    return model


__all__ = ["SIZED_BY_DATA", "build_plugin_model", "plugin_model_args"]
