"""Link-level explainers and their evaluation against planted ground truth."""
