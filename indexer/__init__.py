"""The code index: tree-sitter parsing, the SQLite symbol store, search and the repo map.

This package knows code and nothing about model tiers.
"""
