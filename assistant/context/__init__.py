"""Context: takes a question (with attached text, a diff, earlier turns, pinned files) and a tier's token
budget; gives the smallest sufficient code from the index, each block with where it came from, and the
project's instructions for the stable prefix."""
