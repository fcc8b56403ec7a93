"""Privacy on the city's heterogeneous graph: its units (`units`), graph perturbation per relation
(`perturb`), aggregation perturbation per relation (`aggregation`) and the mechanisms that a city run
looks up by `privacy.name` (`mechanisms`)."""
