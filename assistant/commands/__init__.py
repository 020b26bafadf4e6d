"""Subcommands of `tiercode`, one module per area."""
