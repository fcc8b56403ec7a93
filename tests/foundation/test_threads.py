"""`threads`: auto takes this run's share of the CPUs; an integer is taken as given; anything else is one error."""

from __future__ import annotations

import os

import pytest
import torch
from omegaconf import OmegaConf

from gnnrisk.errors import ConfigError
from gnnrisk.utils import runtime
from gnnrisk.utils.runtime import apply_threads, auto_threads, concurrent_workers, usable_cpus


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_an_integer_is_applied():
    assert apply_threads(1) == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", ["x", 0, -2, 1.5, True, None])
def test_bad_values_are_one_config_error(bad):
    with pytest.raises(ConfigError, match="threads=.*expected auto or an integer >= 1"):
        apply_threads(bad)


def test_auto_divides_the_cpus_among_workers_whatever_the_load(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    assert auto_threads(1) == 8 and auto_threads(2) == 4 and auto_threads(3) == 2 and auto_threads(16) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 0.0, 0.0))  # the load does not change the choice
    assert auto_threads(2) == 4
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 1)
    assert apply_threads("auto") == torch.get_num_threads() == 1


def test_workers_come_from_the_joblib_launcher():
    assert concurrent_workers(None) == 1
    assert concurrent_workers(OmegaConf.create({"_target_": "basic"})) == 1
    assert concurrent_workers(OmegaConf.create({"n_jobs": 2})) == 2
    assert concurrent_workers(OmegaConf.create({"n_jobs": -1})) == usable_cpus()


@pytest.mark.parametrize("field,value", [("data.num_nodes", float("nan")), ("seed", float("nan")),
                                         ("train.epochs", float("inf")), ("model.hidden_channels", float("-inf"))])
def test_integer_fields_refuse_nan_and_inf_with_one_error(field, value):
    from gnnrisk.errors import check_number
    with pytest.raises(ConfigError, match=f"{field}=.*expected an integer"):
        check_number(field, value, low=1, integer=True)


@pytest.mark.slow
def test_skip_finished_must_be_a_boolean(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "gnnrisk", "skip_finished=maybe", "data.num_nodes=300",
                           "train.epochs=2", f"hydra.run.dir={tmp_path / 'r'}"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("gnnrisk: error: skip_finished='maybe' is not allowed: "
                                                    "expected true or false")
    assert "Traceback" not in proc.stderr


def test_generated_pyg_templates_are_removed(tmp_path):
    """The propagate modules PyG writes to the temp folder are deleted, and the loaded classes still work."""
    import os
    import sys
    import tempfile

    from torch_geometric.nn import GATConv

    from gnnrisk.utils.runtime import remove_generated_templates

    conv = GATConv(4, 4)
    files = [m.__file__ for n, m in sys.modules.items() if n.startswith("torch_geometric.")
             and getattr(m, "__file__", None) and os.path.dirname(os.path.realpath(m.__file__))
             == os.path.realpath(tempfile.gettempdir())]
    assert files  # GATConv's propagate and edge_updater modules were rendered there
    remove_generated_templates()
    assert not any(os.path.exists(f) for f in files)
    x, edges = torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])
    assert conv(x, edges).shape == (3, 4)
    assert GATConv(4, 2)(x, edges).shape == (3, 2)  # a new instance of a loaded class needs no file
