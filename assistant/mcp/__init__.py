"""`tiercode mcp`: the repository's code index and free tiers as an MCP server for other coding agents.

Takes a session (a repository, its settings) and gives the official MCP SDK's server with seven tools:
`find_definition`, `find_references`, `outline`, `grep`, `search`, `repo_map` (the index, $0) and
`ask_cheap` (the cascade limited to the index, caches and free tiers unless a paid tier is allowed with a
per-call budget), over stdio or streamable HTTP on 127.0.0.1. Every call is a ledger record with the tool's
name and the tokens returned; the index is kept live by a watcher and each answer says when it last
changed. Modules: `tools` (what each tool answers), `calls` (one at a time, recorded), `live` (the watched
index), `server` (the SDK, transports, signals), `serve_stdio` (stdio that stops on a signal).
"""
