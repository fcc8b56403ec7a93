"""Config folder of the plug-in (`pkg://gnnrisk_example_plugin.conf` on Hydra's search path)."""
