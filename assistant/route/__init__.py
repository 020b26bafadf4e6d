"""Routing: takes a question; gives the index's own answer when it can (pre-flight lookups, no model), else
its route: the kind, difficulty, start tier and the stage that decided them, and the shape the answer should
take (its output limit, form and thinking effort)."""
