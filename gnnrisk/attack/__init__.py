"""Empirical privacy attacks and auditing."""
