"""gnnrisk: graph-based risk analysis with privacy, explainability and fairness controls."""

__version__ = "0.1.0"
