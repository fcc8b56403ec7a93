"""Hydra search-path plug-in: the config folders that installed gnnrisk plug-ins declare (`gnnrisk.configs`)."""
