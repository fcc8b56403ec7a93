"""Training: full-batch and neighbour-sampled mini-batch loops, early stopping, metrics."""
