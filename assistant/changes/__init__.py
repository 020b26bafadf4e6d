"""Changes: takes the edits an answer proposes; gives them written to the files (atomically, with undo) or,
in a git work tree, committed with a message, and taken back on /undo."""
