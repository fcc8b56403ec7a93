"""The study configs and launcher presets compose, and their grids have the intended size."""

from __future__ import annotations


import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gnnrisk.privacy import BUILTIN_MECHANISMS, MECHANISMS
from gnnrisk.progress import planned_jobs
from sweep_helpers import CONFIG_DIR, experiment_override


@pytest.fixture(autouse=True)
def _clear_hydra():
    """Each test composes from scratch."""
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


def _compose(*overrides: str):
    """The full config (hydra node included) for these overrides."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def _planned(experiment: str, *axes: str) -> int | None:
    """Jobs a multirun `experiment=NAME AXES...` would launch (compose cannot take sweep values itself)."""
    cfg = _compose(experiment_override(experiment))
    cfg.hydra.overrides.task = [experiment_override(experiment), *axes]
    return planned_jobs(cfg)


def _blocks(cfg) -> list[dict]:
    """The grid sweeper's blocks as plain dicts."""
    return OmegaConf.to_container(cfg.hydra.sweeper.blocks)


def test_quick_grid():
    """quick: (2 references + 3 mechanisms x 3 epsilons) x 5 seeds = 55 jobs, no duplicates, both callbacks."""
    cfg = _compose(experiment_override("quick"))
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.gnnrisk_sweeper.grid_sweeper.GridSweeper"
    assert planned_jobs(cfg) == 55
    assert cfg.hydra.sweep.dir == "outputs/quick"
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == "${gnnrisk_dirname:${hydra.job.override_dirname}}"
    assert set(cfg.hydra.callbacks) == {"progress", "report"}
    assert cfg.model.name == "gcn" and cfg.data.num_nodes == 5000
    blocks = _blocks(cfg)
    assert blocks[0] == {"privacy": "none", "model": "gcn,mlp"}       # the references meet no epsilon axis
    for block in blocks:
        for name in block["privacy"].split(","):
            assert name in MECHANISMS


def test_command_line_axes_replace_the_experiment_axes():
    """`seed=0,1,2` on the command line replaces quick's seed axis in every block; repeats run once."""
    assert _planned("quick", "seed=0,1,2") == 33
    # every block collapses onto the same non-private GCN run: each seed once
    assert _planned("quick", "seed=0,1,2", "privacy=none", "privacy.epsilon=null", "model=gcn") == 3


def test_tradeoff_grid():
    """tradeoff: epsilon {0.5..16} x 5 seeds per mechanism/model; the references have no epsilon axis."""
    cfg = _compose(experiment_override("tradeoff"))
    blocks = _blocks(cfg)
    eps = [float(e) for e in blocks[1]["privacy.epsilon"].split(",")]
    assert eps == [0.5, 1, 2, 4, 8, 16]
    assert "privacy.epsilon" not in blocks[0] and blocks[0]["privacy"] == "none"
    assert planned_jobs(cfg) == (3 + 2 * 2 * 6 + 4 * 6 + 2 * 6 + 6 + 6) * 5
    named = {name for block in blocks for name in block["privacy"].split(",")}
    # dpdgc_kndp, DPDGC between its edge and node levels, is compared where DPDGC is: experiment=dpdgc_protocol
    assert named == set(BUILTIN_MECHANISMS) - {"dpdgc_kndp"}, "every other built-in mechanism is in the paper grid"


@pytest.mark.parametrize("preset, target, fields", [
    ("parallel", "JoblibLauncher", {"n_jobs": 2, "backend": "loky"}),
    ("slurm", "SlurmLauncher", {"timeout_min": 60, "cpus_per_task": 4, "gpus_per_node": 0, "partition": None}),
    ("submitit_local", "LocalLauncher", {}),
])
def test_launcher_presets(preset, target, fields):
    """Each launcher preset composes onto the installed plugin with its defaults."""
    cfg = _compose(f"hydra/launcher={preset}")
    assert cfg.hydra.launcher._target_.endswith(target)
    for key, value in fields.items():
        assert cfg.hydra.launcher[key] == value


def test_experiment_files_are_global_package():
    """The study configs start with `# @package _global_` so that they can set any group."""
    for path in (CONFIG_DIR / "experiment" / f"{name}.yaml" for name in ("quick", "tradeoff")):
        assert path.read_text().startswith("# @package _global_"), path


def test_city_privacy_grid():
    """city_privacy: (3 references + 12 hetero_gap + 9 lapgraph + 6 hetero_dpsgd + 7 edgerand + 2 + 8 + 3 person
    + 3 loop + 6 private loop) x 5 seeds."""
    cfg = _compose(experiment_override("city_privacy"))
    assert planned_jobs(cfg) == (3 + 12 + 9 + 6 + 6 + 1 + 2 + 8 + 3 + 1 + 2 + 6) * 5 == 295
    assert cfg.data.name == "synthetic_city" and cfg.hydra.sweep.dir == "outputs/city_privacy"
    units = {u for block in _blocks(cfg) for u in str(block.get("privacy.unit", "")).split(",") if u}
    assert units == {"edge:knows", "incident", "person"}
