"""Model plug-ins (entry-point group gnnrisk.models): built like built-ins, checked against the contract in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from gnnrisk.errors import ConfigError
from gnnrisk.models import MODEL_REGISTRY, MODELS, build_model, is_plugin_model, validate_model
from gnnrisk.plugins import BUILTIN

MODULE = '''
import torch
from torch import nn


class TwoHop(nn.Module):
    """Features, then the sum over in-neighbours, then a linear layer: a graph model in a plug-in."""

    def __init__(self, in_channels, out_channels, scale: float = 1.0, bias: bool = True):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=bias)
        self.scale = scale

    def forward(self, x, edge_index):
        agg = torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])
        return self.lin(self.scale * (x + agg))


class NeedsDepth(nn.Module):
    def __init__(self, in_channels, out_channels, depth):
        super().__init__()


class NoSizes(nn.Module):
    def __init__(self, width=3):
        super().__init__()


class Exploding(nn.Module):
    def __init__(self, in_channels, out_channels):
        raise RuntimeError("boom\\nsecond line")


def not_a_class(in_channels, out_channels):
    return nn.Linear(in_channels, out_channels)
'''
CLASSES = ("TwoHop", "NeedsDepth", "NoSizes", "Exploding", "not_a_class")


@pytest.fixture
def models(installed):
    """A fake package registering one model per class of MODULE, named by the class in lower case."""
    installed("fakeplug", {"gnnrisk.models": {c.lower(): f"fakeplug_models:{c}" for c in CLASSES}},
              {"fakeplug_models.py": MODULE})


def cfg(**kwargs):
    return OmegaConf.create(kwargs)


def test_builtins_are_registered_by_gnnrisk_itself():
    """Every built-in model name is in the registry, from gnnrisk, and none counts as a plug-in."""
    assert set(MODELS) <= set(MODEL_REGISTRY)
    assert all(MODEL_REGISTRY.source(name) == BUILTIN and not is_plugin_model(name) for name in MODELS)


def test_plugin_model_builds_and_computes(models):
    """A plug-in model is built with gnnrisk's sizes and its own settings, and computes what its code says."""
    assert is_plugin_model("twohop") and MODEL_REGISTRY.source("twohop") == "package fakeplug"
    model = build_model(cfg(name="twohop", scale=2.0, bias=False), in_channels=3, out_channels=2)
    assert model.scale == 2.0 and model.lin.bias is None
    x = torch.eye(3)
    edge_index = torch.tensor([[0, 1], [1, 2]])
    expected = model.lin(2.0 * torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 1]]))
    assert torch.equal(model(x, edge_index), expected)


@pytest.mark.parametrize("settings, field, match", [
    ({"name": "twohop", "scael": 2.0}, "model.scael", "has no such argument; its arguments: scale, bias"),
    ({"name": "twohop", "in_channels": 5}, "model.in_channels", "is set by gnnrisk for model=twohop"),
    ({"name": "needsdepth"}, "model.depth", "is required by model=needsdepth"),
    ({"name": "nosizes"}, "model.name", "must take the arguments in_channels and out_channels"),
    ({"name": "not_a_class"}, "model.name", "must be a torch.nn.Module class"),
    ({"name": "twohopp"}, "model.name", "twohop"),  # the choice list names the plug-in
])
def test_contract_violations_are_one_line(models, settings, field, match):
    """A setting the plug-in does not take, a missing argument, no sizes, not a Module class: one line, the field."""
    with pytest.raises(ConfigError, match=match) as err:
        validate_model(cfg(**settings))
    assert err.value.field == field and "\n" not in str(err.value)


def test_failing_constructor_is_one_line(models):
    """An exception inside the plug-in's constructor is reported in one line naming it."""
    with pytest.raises(ConfigError, match=r"the plug-in model Exploding failed to build \(RuntimeError: boom second line\)"):
        build_model(cfg(name="exploding"), in_channels=3, out_channels=2)


def test_duplicate_of_a_builtin_is_refused(installed):
    """A plug-in model named like a built-in is refused, naming both."""
    installed("fakeplug", {"gnnrisk.models": {"gcn": "fakeplug_models:TwoHop"}}, {"fakeplug_models.py": MODULE})
    with pytest.raises(ConfigError, match="registered twice in entry-point group gnnrisk.models"):
        validate_model(cfg(name="gcn"))
