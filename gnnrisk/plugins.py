"""The registries of pluggable parts: gnnrisk's built-ins merged with installed entry points, one way in.

A plug-in package registers its members under entry-point groups, with the same "module:attr" values
as the built-in registries (`gnnrisk.privacy.MECHANISMS`, `gnnrisk.data.LOADERS`):

    [project.entry-points."gnnrisk.mechanisms"]
    rr_edges = "my_pkg.mechanism:RandomizedResponseEdges"
    [project.entry-points."gnnrisk.datasets"]
    rings = "my_pkg.dataset:load_rings"
    [project.entry-points."gnnrisk.models"]
    appnp = "my_pkg.model:APPNPNet"
    [project.entry-points."gnnrisk.configs"]
    my_pkg = "my_pkg.conf"              # the package holding privacy/rr_edges.yaml, data/rings.yaml

`Registry` merges the two once, on first use (`registry_entries` is the one function that does it);
a name registered twice is refused in one line naming both sources. The config folders are added
to Hydra's search path by `hydra_plugins.gnnrisk_searchpath` (see `config_search_paths`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gnnrisk.errors import ConfigError

BUILTIN = "gnnrisk (built-in)"
# registry kind -> (entry-point group, the config field whose value names a member)
GROUPS: dict[str, tuple[str, str]] = {
    "mechanism": ("gnnrisk.mechanisms", "privacy.name"),
    "dataset": ("gnnrisk.datasets", "data.name"),
    "model": ("gnnrisk.models", "model.name"),  # values are torch.nn.Module classes (in_channels, out_channels, ...)
    "explainer": ("gnnrisk.explainers", "explain.name"),  # PyG ExplainerAlgorithm classes
    "logger": ("gnnrisk.loggers", "logger.name"),  # gnnrisk.logger.base.Logger classes
    "attack": ("gnnrisk.attacks", "attack"),  # values are modules holding run(ctx) (and validate(cfg, data))
    "audit": ("gnnrisk.audits", "audit.name"),  # modules holding run(cfg, data, trained, run_dir, seed) (and validate)
}
MODULE_VALUED = ("attack", "audit")
CONFIG_GROUP = "gnnrisk.configs"


def _source(ep: EntryPoint) -> str:
    """The distribution that declared `ep`, for error messages."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None)
    return f"package {name}" if name else "an installed package"


def discovered(group: str) -> list[EntryPoint]:
    """The installed entry points of `group` (every distribution on sys.path)."""
    return list(entry_points(group=group))


def registry_entries(group: str, field: str, builtins: dict[str, str],
                     module_valued: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Built-ins merged with the entry points of `group`: ({name: "module:attr" or "module"}, {name: source}).

    A name registered twice (a plug-in shadowing a built-in, or two plug-ins) is a ConfigError naming both.
    """
    entries, sources = dict(builtins), {name: BUILTIN for name in builtins}
    for ep in discovered(group):
        source = _source(ep)
        if ep.name in entries:
            if entries[ep.name] == ep.value and sources[ep.name] == source:
                continue  # the same distribution seen twice on sys.path
            raise ConfigError(field, ep.name, f"registered twice in entry-point group {group}: by "
                              f"{sources[ep.name]} ({entries[ep.name]}) and by {source} ({ep.value}); "
                              "rename one of them")
        if (":" in ep.value) == module_valued:
            raise ConfigError(field, ep.name, f"entry point {ep.value!r} of {source} in group {group} "
                              "must read " + ("'module'" if module_valued else "'module:attr'"))
        entries[ep.name], sources[ep.name] = ep.value, source
    return entries, sources


class Registry(MutableMapping[str, str]):
    """name -> "module:attr": the built-ins, plus the installed plug-ins of an entry-point group on first use."""

    def __init__(self, kind: str, builtins: dict[str, str]):
        self.kind = kind
        self.group, self.field = GROUPS[kind]
        self.builtins = builtins
        self._entries: dict[str, str] | None = None
        self._sources: dict[str, str] = {}

    def _merged(self) -> dict[str, str]:
        """The merged registry, discovered once (ConfigError on a duplicate name)."""
        if self._entries is None:
            self._entries, self._sources = registry_entries(self.group, self.field, self.builtins,
                                                            self.kind in MODULE_VALUED)
        return self._entries

    def reload(self) -> None:
        """Forget what was discovered: the next use looks at the installed entry points again."""
        self._entries, self._sources = None, {}

    def source(self, name: str) -> str:
        """Who registered `name`: gnnrisk itself or the package of a plug-in."""
        self._merged()
        return self._sources.get(name, BUILTIN)

    def load(self, name: str) -> Any:
        """The object (or module) registered under `name`, imported; a plug-in failing to import is a one-line ConfigError."""
        value = self._merged()[name]
        module, _, attr = value.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except Exception as err:  # any failure inside a plug-in's import is the plug-in's, reported in one line
            if self.source(name) == BUILTIN:
                raise
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            raise ConfigError(self.field, name, f"the plug-in {value} of {self.source(name)} "
                              f"cannot be loaded ({reason})") from None
        return obj

    def __getitem__(self, name: str) -> str:
        return self._merged()[name]

    def __setitem__(self, name: str, value: str) -> None:
        self._merged()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._merged()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {self._merged()!r})"


def check_constructor(field_prefix: str, what: str, cls: type, settings: Mapping[str, Any],
                      set_by_gnnrisk: Iterable[str] = ()) -> None:
    """Refuse, in one line, settings that `cls`'s constructor cannot take and arguments it needs but lacks.

    `settings` come from a config group (`field_prefix`.KEY); `set_by_gnnrisk` are arguments gnnrisk itself
    passes (a config must not set them). `what` names the plug-in in the message.
    """
    params = inspect.signature(cls.__init__).parameters
    named = {p: v for p, v in params.items() if p != "self" and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}
    takes_any = any(v.kind is v.VAR_KEYWORD for v in params.values())
    reserved = tuple(set_by_gnnrisk)
    for key, value in settings.items():
        if key in reserved:
            raise ConfigError(f"{field_prefix}.{key}", value, f"is set by gnnrisk for {what}; remove it")
        if key not in named and not takes_any:
            allowed = ", ".join(p for p in named if p not in reserved) or "none"
            raise ConfigError(f"{field_prefix}.{key}", value, f"{what} has no such argument; its arguments: {allowed}")
    required = [p for p, v in named.items() if v.default is v.empty and p not in reserved and p not in settings]
    if required:
        raise ConfigError(f"{field_prefix}.{required[0]}", None, f"is required by {what} (an argument without a "
                          "default); set it in the config")


def config_search_paths() -> list[tuple[str, str]]:
    """(provider, path) of every config folder in entry-point group `gnnrisk.configs`: a module path (pkg://)
    or a "pkg://..." / "file://..." search-path entry."""
    paths = []
    for ep in discovered(CONFIG_GROUP):
        value = ep.value.strip()
        path = value if "://" in value else f"pkg://{value}"
        paths.append((f"gnnrisk-plugin-{ep.name}", path))
    return paths


__all__ = ["BUILTIN", "CONFIG_GROUP", "GROUPS", "MODULE_VALUED", "Registry", "check_constructor", "config_search_paths",
           "discovered", "registry_entries"]
