"""Aggregation of many runs into tables and plots."""
