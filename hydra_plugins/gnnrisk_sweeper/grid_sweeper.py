"""gnnrisk's grid sweeper as a Hydra plugin (Hydra loads sweepers only from `hydra_plugins`)."""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from gnnrisk.sweeper import grid_jobs


class GridSweeper(BasicSweeper):
    """The basic sweeper over a union of products (`blocks`) instead of one product."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None,
                 blocks: list[dict[str, str]] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.blocks = [dict(b) for b in blocks] if blocks else []

    def _parse_config(self) -> list[str]:
        """No shared overrides of its own: `split_arguments` reads params and blocks itself."""
        return []

    def sweep(self, arguments: list[str]) -> Any:
        """Launch every job of the grid, in batches of `max_batch_size`."""
        self._arguments = list(arguments)
        return super().sweep(arguments)

    def split_arguments(self, overrides: Any, max_batch_size: int | None) -> list[list[list[str]]]:  # type: ignore[override]
        """The jobs of the grid (the parsed `overrides` are the command line, re-read as text)."""
        jobs = grid_jobs(self.params, self.blocks, self._arguments)
        size = len(jobs) if max_batch_size in (None, -1) else int(max_batch_size)
        return [jobs[i:i + size] for i in range(0, len(jobs), size)] or [[]]
