"""Model tiers behind one streaming interface: local llama.cpp, Groq, Gemini and Anthropic.

This package knows models and nothing about routing: the assistant decides which tier to call.
"""
