"""Accounting: takes each call's tokens, cost and outcome; gives the append-only ledger, budget verdicts
before a call, usage statistics, and the response caches that answer a repeated question at $0."""
