"""Context: takes a question (with attached text, a diff or earlier turns) and a tier's token budget; gives
the smallest sufficient code from the index, each block with where it came from."""
