"""An example gnnrisk plug-in: the `rr_edges` mechanism, the `blocks` dataset and the `confidence_gap` attack."""
