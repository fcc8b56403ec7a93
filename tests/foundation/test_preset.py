"""`preset=tiny` caps every size, and a run whose settings do not fit its graph refuses all of them at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from foundation_helpers import compose_cfg
from gnnrisk.errors import ConfigError, ConfigErrors, Refusals, error_lines
from gnnrisk.pipeline import prepare_run
from gnnrisk.presets import TINY_CAPS, apply_preset

TOUR = ["model=sage", "privacy=dpsgd_node", "explain=saliency", "attack=lsa", "audit=fairness"]
# The sizes docs/getting_started.md used to recommend, by hand: each stage's own default no longer fits.
HAND_SHRUNK = ["data.num_nodes=300", "train.epochs=10", "privacy.epochs=2", "explain.num_nodes=5"]


def test_tiny_caps_what_is_chosen_and_nothing_else() -> None:
    """Sizes above a cap are lowered, smaller ones kept, groups not chosen get no key."""
    cfg = apply_preset(compose_cfg(*TOUR, "preset=tiny", "data.num_nodes=200", "train.epochs=50"))
    caps = dict(TINY_CAPS)
    assert cfg.data.num_nodes == 200  # below its cap: kept
    assert cfg.train.epochs == caps["train.epochs"]
    assert cfg.attack.lsa.num_pairs == caps["attack.lsa.num_pairs"]
    assert cfg.explain.split == "all" and list(cfg.explain.classes) == [0, 1]
    assert OmegaConf.select(cfg, "attack.adjacency") is None  # not chosen: not added
    untouched = compose_cfg(*TOUR)
    assert apply_preset(untouched) is untouched


def test_unknown_preset_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^preset='huge' is not allowed: expected one of tiny$"):
        apply_preset(compose_cfg("preset=huge"))


def test_tiny_passes_every_check_of_the_tour() -> None:
    """The README's tour command at `preset=tiny`: every check before training passes."""
    prepare_run(compose_cfg(*TOUR, "preset=tiny", "device=cpu", "threads=1"))


def test_every_bad_field_is_refused_at_once() -> None:
    """Shrunk by hand, the tour breaks two stages' defaults: both are named in one refusal."""
    with pytest.raises(ConfigErrors) as caught:
        prepare_run(compose_cfg(*TOUR, *HAND_SHRUNK, "device=cpu", "threads=1"))
    lines = error_lines(caught.value)
    assert [line.split("=", 1)[0] for line in lines] == ["privacy.batch_size", "attack.lsa.num_pairs"]
    assert all("is not allowed" in line for line in lines)


def test_refusals_keep_one_error_as_itself_and_drop_repeats() -> None:
    refusals = Refusals()
    for _ in range(2):
        with refusals.check():
            raise ConfigError("train.epochs", -1, "expected an integer in [1, inf]")
    with pytest.raises(ConfigError) as caught:
        refusals.raise_any()
    assert not isinstance(caught.value, ConfigErrors)
    Refusals().raise_any()  # nothing collected: nothing raised


@pytest.mark.slow
def test_cli_prints_one_line_per_field(tmp_path: Path) -> None:
    """On the command line: exit 2, one `gnnrisk: error:` line per field, no traceback."""
    done = subprocess.run([sys.executable, "-m", "gnnrisk", *TOUR, *HAND_SHRUNK, "threads=1",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("gnnrisk: error: ")]
    assert len(errors) == 2 and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()
