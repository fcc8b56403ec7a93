"""Privacy on the city's heterogeneous graph: its units (`units`), graph perturbation per relation
(`perturb`), aggregation perturbation per relation (`aggregation`), node-level DP-SGD over each person's
computation graph (`dpsgd`) and the mechanisms that a city run looks up by `privacy.name` (`mechanisms`)."""
