"""The Textual terminal UI: `tiercode` in a repository."""
