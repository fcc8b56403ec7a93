"""Aggregation of many runs into tables and plots (`gnnrisk-report SWEEP_DIR`).

collect (run folders -> one DataFrame), aggregate (groups over seeds), tables (CSV, Markdown, LaTeX),
plots (metric vs epsilon, Pareto front), build (the whole report), cli, callback (report at sweep end).
Nothing is imported here, so that `gnnrisk.progress` stays light inside sweep jobs.
"""
