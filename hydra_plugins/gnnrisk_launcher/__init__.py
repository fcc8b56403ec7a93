"""gnnrisk's Hydra launcher plugins: the Slurm launcher (`hydra/launcher=slurm`)."""
