"""The Tiercode application: configuration, the query pipeline, ledger, budgets, caches and faces."""

__version__ = "0.1.0"
