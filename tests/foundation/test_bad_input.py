"""The bad-input battery: every input here is refused with one line naming the field, before any training.

Most cases run in-process: the command-line check (`gnnrisk.preflight`, Hydra's refusals) and then
`prepare_run` (every check the run makes before it trains); cases that a mechanism can only check
against the model it is asked to train run `run_experiment` on a tiny graph and must leave no
stage outputs. A handful run as real `gnnrisk-run` processes: exit code 2, exactly one line on
stderr, no traceback, nothing but the config and the error in the run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gnnrisk.errors import GnnriskError
from gnnrisk.pipeline import prepare_run, run_experiment
from gnnrisk.preflight import check_overrides

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")
TINY = ["train.epochs=2", "device=cpu", "model.hidden_channels=8"]
SMALL_POPULATION = ["data.num_nodes=300", "data.num_communities=6"]  # before a case's own data overrides
# A case names one bad field: the DP-SGD cases lower privacy.batch_size (256) to what 300 people's 150 training
# nodes allow, since every bad field is refused at once (one line each) and it would be refused too.
TRAIN = "train"  # marks a case that is only refused when the mechanism meets the model (runs run_experiment)


def _numbers(field: str, *values: str) -> list[tuple[list[str], str]]:
    """One case per bad value of a field."""
    return [([f"{field}={v}"], field) for v in values]


SALIENCY = ["explain=saliency"]
TEMPORAL = ["data=synthetic_temporal", "data.num_nodes=300", "data.num_communities=6", "data.periods=6"]
FEEDBACK = ["audit=feedback", "audit.learner=logistic", "audit.rounds=2"]
CASES: dict[str, list[tuple]] = {
    "root": [
        *_numbers("seed", "nan", "-1", "1.5", "abc", "true", "inf"),
        *_numbers("threads", "0", "-2", "abc", "1.5"),
        *_numbers("device", "tpu", "cuda:x", "gpu0"),
        *_numbers("eval.selection_rate", "0", "1", "-0.1", "abc"),
    ],
    "data.synthetic": [
        *_numbers("data.num_nodes", "nan", "inf", "5", "-1", "1.5", "abc"),
        *_numbers("data.topology", "foo", "lfr"),
        *_numbers("data.mean_degree", "0", "1000", "nan"),
        *_numbers("data.num_communities", "0", "100000", "1.5"),
        *_numbers("data.mixing", "-0.1", "1.5"),
        *_numbers("data.degree_exponent", "2", "1"),
        *_numbers("data.triadic_closure", "1", "-0.1"),
        *_numbers("data.rewire_prob", "2"),
        *_numbers("data.segregation", "-1", "2"),
        (["data.groups.majority=0.9"], "data.groups"),
        (["data.groups.majority=0"], "data.groups.majority"),
        *_numbers("data.features.informative", "-1", "1.5"),
        *_numbers("data.features.informative_noise", "-1"),
        *_numbers("data.features.proxy_strength", "-1"),
        (["data.features.informative=0", "data.features.proxy=0", "data.features.noise=0"], "data.features"),
        *_numbers("data.outcome.base_rate", "0", "1"),
        *_numbers("data.outcome.transmission", "2"),
        *_numbers("data.outcome.rounds", "-1", "1.5"),
        *_numbers("data.observation.detection_rate.minority", "1.5", "-0.1"),
        *_numbers("data.observation.false_report_rate.majority", "2"),
        (["+data.observation.detection_rate.other=0.5"], "data.observation.detection_rate.other"),
        *_numbers("data.split.train", "0", "1"),
        (["data.split.val=0.6"], "data.split"),
        *_numbers("data.split.inductive_fraction", "0", "1"),
    ],
    "data.planetoid": [
        (["data=planetoid", "data.dataset=Foo"], "data.dataset"),
        (["data=planetoid", "data.root=/nonexistent/planetoid"], "data.root"),
        (["data=planetoid", "data.normalize_features=maybe"], "data.normalize_features"),
        (["data=planetoid", "data.cache_dir=/tmp"], "data.cache_dir"),
        (["data=planetoid", "data.remove_isolated=sometimes"], "data.remove_isolated"),
    ],
    "data.ba_shapes": [
        (["data=ba_shapes", "data.base_nodes=1"], "data.base_nodes"),
        (["data=ba_shapes", "data.base_m=0"], "data.base_m"),
        (["data=ba_shapes", "data.base_m=400"], "data.base_m"),
        (["data=ba_shapes", "data.num_motifs=0"], "data.num_motifs"),
        (["data=ba_shapes", "data.noise_edge_fraction=-1"], "data.noise_edge_fraction"),
        (["data=ba_shapes", "data.feature_dim=0"], "data.feature_dim"),
    ],
    "data.edgelist": [
        (["data=edgelist"], "data.edges_path"),
        (["data=edgelist", "data.edges_path=/nonexistent/edges.csv", "data.nodes_path={tmp}/nodes.csv"],
         "data.edges_path"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv"], "data.nodes_path"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/nodes.csv",
          "data.missing_labels=foo"], "data.missing_labels"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/nodes.csv",
          "data.drop_columns=5"], "data.drop_columns"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/nodes.csv",
          "data.pseudonym_key=-1"], "data.pseudonym_key"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/nodes.csv",
          "data.label_column=risk"], "'risk'"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/headerless.csv"], "header"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/dupcols.csv"], "more than once"),
        (["data=edgelist", "data.edges_path={tmp}/edges.csv", "data.nodes_path={tmp}/scores.csv"], "non-integer"),
    ],
    "model": [
        *_numbers("model.hidden_channels", "0", "nan", "inf", "1.5", "abc"),
        *_numbers("model.num_layers", "0", "-1"),
        *_numbers("model.dropout", "1", "-0.1", "nan"),
        *_numbers("model.norm", "foo", "msg_norm", "diff_group_norm"),
        *_numbers("model.jk", "foo", "lstm"),
        (["model=sage", "model.aggr=foo"], "model.aggr"),
        (["model=sage", "model.aggr=lstm"], "model.aggr"),
        (["model=gat", "model.heads=3"], "model.heads"),
        (["model=gat", "model.heads=0"], "model.heads"),
        (["model=gat", "model.v2=maybe"], "model.v2"),
        (["+model.activation=elu"], "model.activation"),
        *_numbers("model.act", "foo", "softmax"),
        *_numbers("model.input_dropout", "1", "-0.5"),
        (["model=gat", "model.output_heads=0"], "model.output_heads"),
        (["privacy=dpsgd_node", "privacy.batch_size=64", "model=sage", "model.act=elu"], "model.act"),
        (["model=mlp", "+model.jk=cat"], "model.jk"),
        (["model=foo"], "model"),
    ],
    "train": [
        *_numbers("train.epochs", "0", "nan", "1.5"),
        *_numbers("train.lr", "0", "-1"),
        *_numbers("train.weight_decay", "-1"),
        *_numbers("train.patience", "0"),
        *_numbers("train.monitor", "foo", "val_auroc"),
        *_numbers("train.batch_size", "0", "1.5"),
        (["train.batch_size=64", "train.num_neighbors=[]"], "train.num_neighbors"),
        (["train.batch_size=64", "train.num_neighbors=[10]"], "train.num_neighbors"),
        (["train.batch_size=64", "train.num_neighbors=[0,10]"], "train.num_neighbors[0]"),
        (["train.batch_size=64", "train.num_neighbors=abc"], "train.num_neighbors"),
    ],
    "privacy": [
        (["privacy=foo"], "privacy"),
        *[(["privacy=edgerand", f"privacy.epsilon={v}"], "privacy.epsilon") for v in ("0", "-1", "nan", "abc", "inf")],
        (["privacy=edgerand", "privacy.delta=0.1"], "privacy.delta"),
        (["privacy=edgerand", "privacy.max_edges=0"], "privacy.max_edges"),
        (["privacy=edgerand", "privacy.epsilon=0.1", "privacy.max_edges=3000"], "privacy.epsilon", TRAIN),
        *[(["privacy=lapgraph", f"privacy.epsilon={v}"], "privacy.epsilon") for v in ("0", "inf")],
        (["privacy=gap_edp", "privacy.epsilon=.inf"], "privacy.epsilon='.inf' is not allowed: expected a number in "
         "(0.0, inf] (on the command line write inf"),   # YAML's spelling is text in an override
        (["privacy=lapgraph", "privacy.delta=0.5"], "privacy.delta"),
        *[(["privacy=gap_edp", f"privacy.{k}={v}"], f"privacy.{k}")
          for k, v in (("epsilon", "0"), ("epsilon", "nan"), ("delta", "0"), ("delta", "1"), ("hops", "0"),
                       ("encoder_epochs", "0"))],
        (["privacy=gap_edp", "model=gat"], "model.name"),
        (["privacy=gap_edp", "model.act=elu"], "model.act"),
        (["privacy=progap_ndp", "model.input_dropout=0.5"], "model.input_dropout"),
        *[(["privacy=gap_ndp", f"privacy.{k}={v}"], f"privacy.{k}")
          for k, v in (("max_degree", "0"), ("max_grad_norm", "0"), ("batch_size", "0"), ("epochs", "0"),
                       ("lr", "0"))],
        (["privacy=dpsgd_node", "privacy.batch_size=64", "model=gcn"], "model.name", TRAIN),
        (["privacy=dpsgd_node", "model=sage", "privacy.epsilon=-1"], "privacy.epsilon"),
        (["privacy=dpsgd_node", "model=sage", "privacy.max_degree=0"], "privacy.max_degree"),
        (["privacy=dpsgd_node", "model=sage", "privacy.batch_size=0"], "privacy.batch_size"),
        (["privacy=dp_mlp", "privacy.batch_size=64", "model=gcn"], "model.name", TRAIN),
        (["privacy=dp_mlp", "model=mlp", "privacy.batch_size=0"], "privacy.batch_size", TRAIN),
        (["privacy=dp_mlp", "model=mlp", "privacy.epochs=0"], "privacy.epochs", TRAIN),
        (["privacy=dp_mlp", "model=mlp", "privacy.max_grad_norm=-1"], "privacy.max_grad_norm", TRAIN),
        (["privacy=dp_mlp", "privacy.batch_size=64", "model=mlp", "privacy.diagnostics=maybe"], "privacy.diagnostics"),
        (["privacy=progap_edp", "privacy.epsilon=0"], "privacy.epsilon"),
        (["privacy=progap_ndp", "privacy.max_degree=0"], "privacy.max_degree"),
    ],
    "explain": [
        (["explain=foo"], "explain"),
        *[(SALIENCY + [f"explain.{k}={v}"], f"explain.{k}")
          for k, v in (("num_nodes", "0"), ("nodes", "abc"), ("split", "foo"), ("classes", "[5]"),
                       ("classes", "[]"), ("top_k", "0"), ("num_hops", "0"), ("subgraph", "maybe"),
                       ("undirected", "maybe"), ("ground_truth", "foo"))],
        (SALIENCY + ["explain.nodes=[0,0]"], "explain.nodes"),
        (SALIENCY + ["explain.nodes=[100000]"], "explain.nodes[0]=100000"),
        (SALIENCY + ["explain.nodes=[1,100000]"], "explain.nodes[1]=100000"),
        (["explain=gnnexplainer", "explain.epochs=0"], "explain.epochs"),
        (["explain=gnnexplainer", "explain.lr=0"], "explain.lr"),
        (["explain=integrated_gradients", "explain.n_steps=0"], "explain.n_steps"),
        (["explain=attention"], "explain.name"),
        (["explain=saliency", "model=mlp"], "explain.name"),
    ],
    "attack": [
        (["attack=[lsa,foo]"], "attack"),
        (["attack=lsa", "attack.lsa.num_pairs=0"], "attack.lsa.num_pairs"),
        (["attack=lsa", "attack.lsa.num_pairs=1000000"], "attack.lsa.num_pairs"),
        (["attack=lsa", "attack.lsa.distances=[foo]"], "attack.lsa.distances"),
        (["attack=linkteller", "attack.linkteller.setting=foo"], "attack.linkteller.setting"),
        (["attack=linkteller", "attack.linkteller.num_nodes=1"], "attack.linkteller.num_nodes"),
        (["attack=linkteller", "attack.linkteller.num_nodes=100000"], "attack.linkteller.num_nodes"),
        (["attack=linkteller", "attack.linkteller.delta=0"], "attack.linkteller.delta"),
        (["attack=linkteller", "attack.linkteller.chunk=0"], "attack.linkteller.chunk"),
        # num_pairs bounded by the ties pairs=balanced draws from (1e9 was killed at 24 GB after training)
        (["attack=linkteller", "attack.linkteller.pairs=balanced", "attack.linkteller.num_pairs=1000000000"],
         "attack.linkteller.num_pairs=1000000000 is not allowed: expected at most"),
        (["attack=linkteller", "attack.linkteller.pairs=balanced", "attack.linkteller.setting=transductive",
          "attack.linkteller.num_pairs=1000000000"], "attack.linkteller.num_pairs"),
        # a field the chosen mode ignores is still checked for its type and range
        (["attack=linkteller", "attack.linkteller.pairs=all", "attack.linkteller.num_pairs=-3"],
         "attack.linkteller.num_pairs=-3"),
        (["attack=linkteller", "attack.linkteller.pairs=balanced", "attack.linkteller.num_nodes=1"],
         "attack.linkteller.num_nodes=1"),
        (["attack=canary", "attack.canary.num_canaries=1"], "attack.canary.num_canaries"),
        (["attack=canary", "attack.canary.num_canaries=100000"], "attack.canary.num_canaries"),
        (["attack=canary", "attack.canary.num_canaries=20", "attack.canary.delta=0"], "attack.canary.delta"),
        (["attack=adjacency", "attack.adjacency.num_nodes=1"], "attack.adjacency.num_nodes"),
        (["attack=adjacency", "attack.adjacency.num_nodes=100000"], "attack.adjacency.num_nodes"),
        (["attack=explain_sim", "attack.explain_sim.num_pairs=0"], "attack.explain_sim.num_pairs"),
        (["attack=explain_sim", "attack.explain_sim.chunk=0"], "attack.explain_sim.chunk"),
    ],
    "audit": [
        (["audit=fairness", "audit.split=foo"], "audit.split"),
        (["audit=fairness", "audit.reliability_bins=0"], "audit.reliability_bins"),
        *[(FEEDBACK + [f"audit.{k}={v}"], f"audit.{k}")
          for k, v in (("mode", "foo"), ("rounds", "0"), ("unit", "foo"), ("budget", "0"), ("sharpness", "-1"),
                       ("explore", "-0.1"), ("detection_attended", "2"), ("detection_unattended", "-1"),
                       ("learner", "foo"), ("epochs", "0"))],
        (FEEDBACK + ["audit.mode=ipw", "audit.explore=0"], "audit.explore"),
    ],
    "data.synthetic_temporal": [
        *[(TEMPORAL + [f"data.{k}={v}"], f"data.{k}") for k, v in (
            ("periods", "1"), ("periods", "0"), ("periods", "2.5"), ("dynamics.churn", "1.5"),
            ("dynamics.churn", "-0.1"), ("dynamics.recovery", "2"), ("dynamics.recovery", "-1"),
            ("dynamics.closure", "1.5"), ("dynamics.feature_drift", "-1"), ("dynamics.onset_rate", "0"),
            ("dynamics.onset_rate", "1"), ("dynamics.memory", "nan"))],
        (TEMPORAL + ["eval.horizons=[3]"], "eval.horizons"),   # 6 periods: at most 2 ahead
        (TEMPORAL + ["eval.horizons=[0]"], "eval.horizons"),
        (TEMPORAL + ["eval.horizons=[]"], "eval.horizons"),
        (TEMPORAL + ["eval.horizons=[1,1]"], "eval.horizons=[1, 1] is not allowed: expected distinct"),
        (TEMPORAL + ["+data.dynamics.foo=1"], "data.dynamics.foo=1"),   # unknown keys added with +
        (TEMPORAL + ["+data.dynamics.churnn=0.1"], "did you mean data.dynamics.churn?"),
        (TEMPORAL + ["attack=lsa"], "attack='lsa' is not allowed: not available on data with periods"),
        (TEMPORAL + ["attack=[lsa,mia]"], "attack=['lsa', 'mia']"),
        (TEMPORAL + ["eval.origins=5"], "eval.origins"),
        (TEMPORAL + ["eval.origins=0"], "eval.origins"),
        (["model=gconv_gru"], "model.name"),                  # a forecaster on one snapshot
        (["model=lstm"], "model.name"),
        (["model=gconv_lstm", "privacy=edgerand"], "model.name"),
        (TEMPORAL + ["privacy=gap_edp"], "privacy.name"),       # and the reverse: snapshot-only parts on periods
        (TEMPORAL + ["privacy=progap_ndp"], "privacy.name"),
        (TEMPORAL + ["model=lstm", "privacy=lapgraph"], "model.name"),
        (TEMPORAL + ["model=gconv_gru", "explain=pgexplainer"], "explain"),   # no member for periods
        (TEMPORAL + ["explain=saliency"], "explain.name"),  # a temporal explainer on a snapshot model
        (TEMPORAL + ["attack=mia"], "attack"),
        (TEMPORAL + ["audit=fairness"], "audit"),
        (TEMPORAL + ["train.batch_size=64"], "train.batch_size"),
    ],
    "hydra": [
        (["data.foo=1"], "data.foo"),
        (["foo=1"], "foo"),
        (["experiment=nope"], "experiment"),
        (["hydra/launcher=nope"], "hydra/launcher"),
        (["a=b=c]"], "a='b=c]' is not allowed: mismatched input"),        # the malformed override's key named
        (["model.hidden_channels=[1"], "model.hidden_channels='[1' is not allowed"),
        (["x"], "override='x' is not allowed: missing EQUAL"),
        (["data.groups={a: 0.5, b: 0.5}"], "data.groups"),
        (["trian.epochs=3"], "trian.epochs='3' is not allowed: trian is not a config group or key; "
         "did you mean train?"),
        (["modle=gcn"], "modle='gcn' is not allowed: modle is not a config group or key; did you mean model?"),
        (["model.hiden_channels=8"], "did you mean model.hidden_channels?"),
        (["+data.foo=1"], "data.foo=1"),
        (["data=csbm", "+data.split.kind=public"], "data.split.kind"),
        (["hydra.run.dir=/tmp/r\u00e9sum\u00e9"], "hydra.run.dir='/tmp/r\u00e9sum\u00e9' is not allowed: Hydra reads "
         "non-ASCII characters only inside quotes"),   # unquoted (gnnrisk-run quotes it itself)
    ],
}
FLAT = [(group, case[0], case[1], TRAIN in case[2:]) for group, cases in CASES.items() for case in cases]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small CSV inputs: a valid edge list and node tables that are valid, headerless, or broken."""
    folder = tmp_path_factory.mktemp("csv")
    ids = [f"p{i}@example.org" for i in range(40)]
    (folder / "edges.csv").write_text("source,target\n" + "".join(f"{ids[i]},{ids[(i + 1) % 40]}\n" for i in range(40)))
    rows = [f"{ids[i]},{i % 7},{i % 2}" for i in range(40)]
    (folder / "nodes.csv").write_text("id,f0,label\n" + "\n".join(rows) + "\n")
    (folder / "headerless.csv").write_text("\n".join(rows) + "\n")
    (folder / "dupcols.csv").write_text("id,f0,f0,label\n" + "\n".join(f"{ids[i]},1,2,{i % 2}" for i in range(40)) + "\n")
    (folder / "scores.csv").write_text("id,f0,label\n" + "\n".join(f"{ids[i]},1,{i / 41:.3f}" for i in range(40)) + "\n")
    return folder


def refusal(overrides: list[str], run_dir: Path, train: bool) -> str:
    """The one-line message that refuses `overrides`; fails the test when they are accepted."""
    try:
        check_overrides(overrides, CONFIGS)
    except GnnriskError as err:
        return str(err)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    try:
        if train:
            run_experiment(cfg, run_dir)
        else:
            prepare_run(cfg)
    except GnnriskError as err:
        return str(err)
    raise AssertionError(f"accepted: {overrides}")


def test_battery_has_enough_cases() -> None:
    """At least 150 inputs, spread over every field group."""
    assert len(FLAT) >= 150, len(FLAT)
    assert all(len(cases) >= 3 for cases in CASES.values())


@pytest.mark.parametrize("group,overrides,field,train", FLAT, ids=[f"{g}:{' '.join(o)}" for g, o, *_ in FLAT])
def test_refused_in_one_line_naming_the_field(group: str, overrides: list[str], field: str, train: bool,
                                              files: Path, tmp_path: Path) -> None:
    """Refused with a one-line message that names the field; a refused run leaves no stage outputs."""
    own_data = any(o.startswith("data=") for o in overrides)
    overrides = TINY + ([] if own_data else SMALL_POPULATION) + [o.replace("{tmp}", str(files)) for o in overrides]
    run_dir = tmp_path / "run"
    message = refusal(overrides, run_dir, train=train)
    assert "\n" not in message and "Traceback" not in message
    assert field in message, message
    if run_dir.exists():
        assert {p.name for p in run_dir.iterdir()} <= {"config.yaml", "env.json"}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`gnnrisk-run` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "gnnrisk", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("overrides,field", [
    (["model=transformer"], "model"),
    (["data.foo=1"], "data.foo"),
    (["data.num_nodes=nan"], "data.num_nodes"),
    (["explain=attention"], "explain.name"),
    (["attack=lsa", "attack.lsa.num_pairs=0"], "attack.lsa.num_pairs"),
    (["skip_finished=maybe"], "skip_finished"),
    (["data=synthetic_temporal", "data.periods=4", "eval.horizons=[2]"], "eval.horizons"),
    (["logger=mlflow", "logger.dir=/proc/x"], "logger.dir="),   # no tracking store either
    (["logger=foo"], "logger="),
])
@pytest.mark.slow
def test_real_process_exit_2_one_line_no_outputs(overrides: list[str], field: str, tmp_path: Path) -> None:
    """A representative handful as real processes: exit 2, one stderr line, only config and error left."""
    run_dir = tmp_path / "run"
    proc = _cli(f"hydra.run.dir={run_dir}", *TINY, *SMALL_POPULATION, *overrides, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"gnnrisk: error: {field}"), lines
    assert "Traceback" not in proc.stdout + proc.stderr
    left = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert left <= {".hydra", "config.yaml", "env.json", "error.json", "app.log"}, left


@pytest.mark.parametrize("study,dataset", [("gap_protocol", "Texas"), ("dpdgc_protocol", "PubMed")])
def test_protocol_study_on_a_dataset_it_has_no_settings_for(study: str, dataset: str, tmp_path: Path) -> None:
    """A protocol study refuses a dataset its paper's settings were not written for: one line, before its sweep."""
    sweep = tmp_path / "sweep"
    proc = _cli("-m", f"experiment={study}", f"data.dataset={dataset}", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"gnnrisk: error: data.dataset='{dataset}' is not allowed: experiment={study}")
    assert not sweep.exists()


# --- experiment tracking (`logger=...`): refused before any training ----------------------------------

LOGGER_CASES = [
    (["logger=foo"], "logger"),                                   # Hydra's refusal: the members listed
    (["logger=csv", "logger.name=foo"], "logger.name"),
    (["logger=csv", "logger.dir=/proc/x"], "logger.dir"),         # unwritable even for root
    (["logger=mlflow", "logger.dir=/proc/x/store"], "logger.dir"),
    (["logger=tensorboard", "logger.dir={tmp}/edges.csv/store"], "logger.dir"),  # a file where a folder goes
    (["logger=csv", "logger.dir=''"], "logger.dir"),
    (["logger=csv", "+logger.foo=1"], "logger.foo"),
    (["logger=csv", "logger.dir=/tmp/" + "a" * 300], "logger.dir"),   # a name over the file system's limit
    (["logger=mlflow", "logger.dir=/tmp/gnnrisk-deep/" + "/".join(["d" * 200] * 3)], "logger.dir"),  # SQLite: 512
]


@pytest.mark.parametrize("overrides,field", LOGGER_CASES, ids=[" ".join(o) for o, _ in LOGGER_CASES])
def test_logger_refused_in_one_line_naming_the_field(overrides: list[str], field: str, files: Path,
                                                     tmp_path: Path) -> None:
    """Bad tracking settings: one line naming the field, nothing written."""
    overrides = TINY + SMALL_POPULATION + [o.replace("{tmp}", str(files)) for o in overrides]
    message = refusal(overrides, tmp_path / "run", train=False)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{field}="), message
    assert not (tmp_path / "run").exists()


def test_unknown_logger_lists_the_members() -> None:
    """`logger=foo` names the group and every member."""
    message = refusal(["logger=foo"], Path("unused"), train=False)
    assert all(member in message for member in ("none", "csv", "mlflow", "tensorboard")), message


@pytest.mark.parametrize("overrides", [
    ["eval.objective=test_auroc"],                   # the test split: biases the reported test numbers
    ["eval.objective=val_loss"],                     # not a metric a run writes
    ["eval.objective=train_acc"],
    ["data=ba_shapes", "eval.objective=val_auroc_true"],  # no ground truth on this data
])
def test_objective_refused_by_the_run_itself(overrides: list[str], tmp_path: Path) -> None:
    """`eval.objective` is checked by the run's own validation too (validate_run), against its data."""
    own_data = any(o.startswith("data=") for o in overrides)
    message = refusal(TINY + ([] if own_data else SMALL_POPULATION) + overrides, tmp_path / "run", train=False)
    assert message.startswith("eval.objective=") and "\n" not in message, message


def test_validation_objective_accepted_by_the_run() -> None:
    """A validation metric of the data (`_true` on the synthetic population) passes prepare_run."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        cfg = compose("config", overrides=TINY + SMALL_POPULATION + ["eval.objective=val_auroc_true"])
    assert prepare_run(cfg).data.y_true is not None
