"""The command line face: takes `tiercode` arguments and options; gives answers, plans, the index's
lookups, stats and settings on stdout (one-line errors and the exit code on failure). `main.py` is the
click group and the entry point; one module per area of subcommands; `output.py` prints."""
