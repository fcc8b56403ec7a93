"""Appends every config folder of entry-point group `gnnrisk.configs` to Hydra's search path.

A plug-in package declares `[project.entry-points."gnnrisk.configs"] my_pkg = "pkg://my_pkg.conf"`
(or just the module, `my_pkg.conf`); its `privacy/NAME.yaml`, `data/NAME.yaml`... then compose as
`privacy=NAME`. Appended after gnnrisk's own folder, so a plug-in cannot silently replace a built-in
config (its mechanism or dataset name would be refused as a duplicate anyway).
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class GnnriskPluginSearchPath(SearchPathPlugin):
    """Adds the config folders of installed gnnrisk plug-ins."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        """Append each `gnnrisk.configs` entry point's folder (kept light: no torch import here)."""
        from gnnrisk.plugins import config_search_paths

        present = {element.path for element in search_path.get_path()}
        for provider, path in config_search_paths():
            if path not in present:
                search_path.append(provider=provider, path=path)
