"""A synthetic city of people, places and incidents, with a self-exciting crime process whose truth is kept.

- `hawkes`: simulate Mohler et al.'s (2011) space-time self-exciting process, by generations;
- `em`: fit it back by EM (stochastic declustering), with information-based intervals;
- `world`: `generate_city(cfg, seed)`, the heterogeneous graph (people, places, incidents).
"""

from __future__ import annotations

from gnnrisk.data.city.config import DEFAULTS
from gnnrisk.data.city.em import HawkesFit, fit_hawkes
from gnnrisk.data.city.hawkes import MOHLER_2011, Events, HawkesParams, simulate_hawkes
from gnnrisk.data.city.world import RELATIONS, generate_city

__all__ = ["DEFAULTS", "MOHLER_2011", "RELATIONS", "Events", "HawkesFit", "HawkesParams", "fit_hawkes",
           "generate_city", "simulate_hawkes"]
