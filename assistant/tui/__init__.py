"""The terminal face (bare `tiercode` in a repository): takes questions and slash commands as they are
typed; gives streamed answers with their cost in view, the index kept live, and proposed edits to apply."""
