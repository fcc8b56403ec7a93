"""gnnrisk's Hydra plugins: the grid sweeper (`hydra/sweeper=grid`)."""
