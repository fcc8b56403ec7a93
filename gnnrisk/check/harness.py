"""The check's run: a mechanism composed on a small synthetic graph, its result records, and their table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from gnnrisk.errors import ConfigError

# The check's graph and training: small enough for seconds per run, large enough for ~150 edge canaries.
# No early stopping: a model that trains to the end memorises most, the audit's worst case. A `data=` override
# replaces the synthetic graph (then give its size, e.g. data=blocks data.num_nodes=300).
SMALL_DATA = ("data=synthetic", "data.num_nodes=300", "data.num_communities=6", "data.mean_degree=6")
SMALL_TRAIN = ("train.epochs=200", "train.patience=200", "model.hidden_channels=16")
SMALL_GRAPH = (*SMALL_DATA, *SMALL_TRAIN)
# The epsilon the check runs a mechanism at (when its group has `privacy.epsilon` and none is given): an
# audit can refute only an epsilon below what its trials can show (`AuditOutcome.power`, ~2.3 here).
AUDIT_EPSILON = 1.0
# DP-SGD batches (`privacy.batch_size`, when the group has one and none is given): the graph has 150 training nodes.
SMALL_BATCH = 64
MODELS = ("gcn", "sage", "mlp")  # tried in order: the first one the mechanism accepts
STATUSES = ("pass", "fail", "inconclusive", "skip")


@dataclass
class CheckResult:
    """One check's outcome: pass, fail, inconclusive (could not refute) or skip (does not apply)."""

    check: str
    status: str
    detail: str
    seconds: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckReport:
    """Every check of one mechanism, the overrides it ran with, and the total cost."""

    mechanism: str
    overrides: list[str]
    results: list[CheckResult]
    seconds: float

    @property
    def passed(self) -> bool:
        """True when no check failed (inconclusive and skipped checks do not fail the mechanism)."""
        return all(r.status != "fail" for r in self.results)

    def result(self, check: str) -> CheckResult:
        """The result of the check named `check`."""
        return next(r for r in self.results if r.check == check)

    def as_dict(self) -> dict[str, Any]:
        """The report as written to check.json."""
        return {"mechanism": self.mechanism, "passed": self.passed, "overrides": self.overrides,
                "seconds": round(self.seconds, 2), "checks": [asdict(r) for r in self.results]}

    def table(self) -> str:
        """The report as a plain-text table, one line per check."""
        rows = [("check", "status", "seconds", "detail")]
        rows += [(r.check, r.status.upper(), f"{r.seconds:.1f}", r.detail) for r in self.results]
        width = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = ["  ".join(row[i].ljust(width[i]) for i in range(3)) + "  " + row[3] for row in rows]
        verdict = "PASSED" if self.passed else "FAILED"
        return "\n".join([f"gnnrisk-check {self.mechanism}: {verdict} in {self.seconds:.1f} s", *lines])


def timed(check: str, body: Callable[[], CheckResult]) -> CheckResult:
    """Run one check, recording its wall time."""
    start = time.perf_counter()
    result = body()
    result.seconds = time.perf_counter() - start
    return result


def _compose(overrides: list[str]) -> DictConfig:
    """gnnrisk's config composed with `overrides` (installed plug-ins' config folders included)."""
    from gnnrisk.folders import CONFIG_DIR
    from gnnrisk.preflight import check_overrides

    check_overrides(overrides, CONFIG_DIR)  # Hydra's refusals as one-line ConfigErrors
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("config", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def _given(overrides: Sequence[str], key: str) -> bool:
    """Whether `overrides` set `key` (e.g. model, privacy.epsilon)."""
    return any(o.lstrip("+~").split("=", 1)[0] == key for o in overrides)


def check_config(privacy: str, overrides: Sequence[str] = ()) -> tuple[DictConfig, list[str]]:
    """The run config the check uses for mechanism `privacy` (a `privacy=` member) and the overrides it took.

    The small graph of `SMALL_GRAPH` under the user's overrides; `privacy.epsilon=AUDIT_EPSILON` and
    `privacy.batch_size=SMALL_BATCH` (where the group has them) unless given;
    the first model of `MODELS` the mechanism accepts unless `model=` is given.
    """
    from gnnrisk.privacy import build_mechanism, mechanism_class

    graph = SMALL_TRAIN if _given(overrides, "data") else SMALL_GRAPH
    base = [*graph, f"privacy={privacy}", *overrides]
    probe = _compose(base)
    private = mechanism_class(probe.privacy.name).privacy_unit is not None
    if private and "epsilon" in probe.privacy and not _given(overrides, "privacy.epsilon"):
        base.append(f"privacy.epsilon={AUDIT_EPSILON}")
    if "batch_size" in probe.privacy and not _given(overrides, "privacy.batch_size"):
        base.append(f"privacy.batch_size={SMALL_BATCH}")
    if _given(overrides, "model"):
        return _compose(base), base
    mechanism = build_mechanism(_compose(base).privacy)
    refusals = []
    for model in MODELS:
        cfg = _compose([*base, f"model={model}"])
        try:
            mechanism.check_model(cfg.model)
        except ConfigError as err:
            refusals.append(str(err))
            continue
        return cfg, [*base, f"model={model}"]
    raise ConfigError("model", ",".join(MODELS), f"privacy={privacy} accepts none of them ({refusals[-1]}); "
                      "give model=NAME")


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """A resolved plain copy of `cfg` (for the report)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


__all__ = ["AUDIT_EPSILON", "MODELS", "SMALL_GRAPH", "CheckReport", "CheckResult", "check_config", "timed"]
