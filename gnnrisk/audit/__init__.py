"""Fairness audits: group metrics against observed labels and ground truth, feedback loops."""
