"""experiment=temporal: the grid has the intended jobs, and every job passes every pre-training check."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gnnrisk.pipeline import prepare_run
from gnnrisk.sweeper import grid_jobs
from tests_data_helpers import CONFIGS

CONFIG_DIR = str(CONFIGS.parent)


def _compose(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.slow
def test_every_job_of_the_study_is_accepted():
    """51 jobs: 6 forecasters x 3 seeds, 3 graph-perturbation + 3 DP-SGD cells x 3 seeds, 3 loop modes x 5 seeds."""
    sweeper = OmegaConf.to_container(_compose("experiment=temporal").hydra.sweeper, resolve=False)
    jobs = grid_jobs(sweeper["params"], sweeper["blocks"], [])
    assert len(jobs) == 51 and len({frozenset(j) for j in jobs}) == 51
    for job in jobs:  # tiny sizes: the checks, not the sizes, are under test
        cfg = _compose("experiment=temporal", *job, "preset=tiny")
        prepare_run(cfg)
