"""Registries: built-ins and installed entry points through one function; duplicates and bad plug-ins refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gnnrisk.app import CONFIG_DIR
from gnnrisk.attack import attack_module
from gnnrisk.data import BUILTIN_LOADERS, LOADERS, build_dataset
from gnnrisk.errors import ConfigError
from gnnrisk.plugins import BUILTIN, config_search_paths
from gnnrisk.privacy import BUILTIN_MECHANISMS, MECHANISMS, build_mechanism, mechanism_class
from gnnrisk.privacy.graph_perturbation import EdgeRand

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_MODULE = '''
from gnnrisk.privacy.graph_perturbation import EdgeRand
from gnnrisk.data.synthetic import load_synthetic

class MyEdgeRand(EdgeRand):
    name = "my_edgerand"

def load_mine(cfg, seed):
    return load_synthetic(cfg, seed)

def load_nothing(cfg, seed):
    return {"x": None}

NOT_A_CLASS = 3
'''
CONFIG = "name: my_edgerand\nepsilon: 2.0\ndelta: 0.0\nmax_edges: 1000000\n"


def fake_plugin(installed, mechanisms=None, datasets=None, configs=None, attacks=None):
    """A fake distribution `fakeplug` with module fakeplug_mod and its config folder fakeplug_conf/privacy."""
    groups = {"gnnrisk.mechanisms": mechanisms or {}, "gnnrisk.datasets": datasets or {},
              "gnnrisk.configs": configs or {}, "gnnrisk.attacks": attacks or {}}
    return installed("fakeplug", {k: v for k, v in groups.items() if v},
                     {"fakeplug_mod.py": PLUGIN_MODULE, "fakeplug_conf/__init__.py": "",
                      "fakeplug_conf/privacy/my_edgerand.yaml": CONFIG})


def test_builtins_are_in_the_registry():
    """The registries hold every built-in, registered by gnnrisk itself (plus any installed plug-in)."""
    assert all(MECHANISMS[k] == v for k, v in BUILTIN_MECHANISMS.items())
    assert all(LOADERS[k] == v for k, v in BUILTIN_LOADERS.items())
    assert MECHANISMS.source("gap_edp") == BUILTIN
    assert mechanism_class("edgerand") is EdgeRand


def test_plugin_mechanism_and_dataset_register(installed):
    """Entry points of an installed package join the registries and build like built-ins."""
    fake_plugin(installed, {"my_edgerand": "fakeplug_mod:MyEdgeRand"}, {"mine": "fakeplug_mod:load_mine"})
    assert MECHANISMS["my_edgerand"] == "fakeplug_mod:MyEdgeRand"
    assert MECHANISMS.source("my_edgerand") == "package fakeplug"
    mech = build_mechanism(OmegaConf.create({"name": "my_edgerand", "epsilon": 2.0, "delta": 0.0,
                                             "max_edges": 1000}))
    assert type(mech).__name__ == "MyEdgeRand" and mech.epsilon == 2.0
    assert "mine" in LOADERS and "synthetic" in LOADERS


def test_duplicate_name_is_refused_naming_both(installed):
    """A plug-in reusing a built-in's name: one line naming both registrations."""
    fake_plugin(installed, {"edgerand": "fakeplug_mod:MyEdgeRand"})
    with pytest.raises(ConfigError) as err:
        list(MECHANISMS)
    text = str(err.value)
    assert "\n" not in text and text.startswith("privacy.name='edgerand'")
    assert "gnnrisk (built-in) (gnnrisk.privacy.graph_perturbation:EdgeRand)" in text
    assert "package fakeplug (fakeplug_mod:MyEdgeRand)" in text


@pytest.mark.parametrize("value, match", [
    ("fakeplug_missing:Thing", r"cannot be loaded \(ModuleNotFoundError"),
    ("fakeplug_mod:Nothing", r"cannot be loaded \(AttributeError"),
    ("fakeplug_mod:NOT_A_CLASS", "is not a subclass of gnnrisk.privacy.base.Mechanism"),
    ("broken_mechanisms:NotAMechanism", "is not a subclass of gnnrisk.privacy.base.Mechanism"),
    ("broken_mechanisms:NoTrain", "breaks the Mechanism contract: it does not implement train"),
])
def test_bad_mechanism_plugin_is_refused_in_one_line(installed, value, match):
    """A plug-in that fails to import, is not a Mechanism or breaks its contract: one ConfigError line."""
    fake_plugin(installed, {"bad": value})
    with pytest.raises(ConfigError, match=match) as err:
        mechanism_class("bad")
    assert "\n" not in str(err.value) and "package fakeplug" in str(err.value)


@pytest.mark.parametrize("value, match", [("fakeplug_mod:NOT_A_CLASS", "is not a loader function"),
                                          ("fakeplug_mod:load_nothing", "returned dict, not a torch_geometric")])
def test_bad_dataset_plugin_is_refused(installed, value, match):
    """A dataset entry point that is not a loader, or a loader that returns something else: refused."""
    fake_plugin(installed, datasets={"bad": value})
    with pytest.raises(ConfigError, match=match):
        build_dataset(OmegaConf.create({"name": "bad"}), 0)


@pytest.mark.parametrize("value, match", [("fakeplug_mod", r"has no run\(ctx\) function"),
                                          ("fakeplug_mod:load_mine", "must read 'module'")])
def test_bad_attack_plugin_is_refused(installed, value, match):
    """An attack entry point naming an object instead of a module, or a module without run(ctx): one line."""
    fake_plugin(installed, attacks={"noop": value})
    with pytest.raises(ConfigError, match=match) as err:
        attack_module("noop")
    assert "\n" not in str(err.value)


def test_plugin_configs_join_hydra_search_path(installed):
    """`gnnrisk.configs` entry points put a plug-in's config folder on the search path: privacy=NAME composes."""
    fake_plugin(installed, {"my_edgerand": "fakeplug_mod:MyEdgeRand"}, configs={"fakeplug": "fakeplug_conf"})
    assert ("gnnrisk-plugin-fakeplug", "pkg://fakeplug_conf") in config_search_paths()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("config", overrides=["privacy=my_edgerand"])
    finally:
        GlobalHydra.instance().clear()
    assert cfg.privacy.name == "my_edgerand" and cfg.privacy.epsilon == 2.0


@pytest.mark.slow
def test_gnnrisk_run_refuses_a_duplicate_in_one_line(installed):
    """End to end: gnnrisk-run with a plug-in shadowing a built-in exits 2 with one line, before training."""
    root = fake_plugin(installed, {"gap_edp": "fakeplug_mod:MyEdgeRand"})
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    proc = subprocess.run([sys.executable, "-m", "gnnrisk", "privacy=gap_edp", "data.num_nodes=100",
                           f"hydra.run.dir={root / 'run'}"], check=False, capture_output=True, text=True, env=env,
                          cwd=root, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "registered twice" in lines[0] and "Traceback" not in proc.stderr
    assert not (root / "run" / "metrics.json").exists()
