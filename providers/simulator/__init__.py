"""A fake model upstream speaking OpenAI, Azure OpenAI, Anthropic and Gemini wire formats.

A pure ASGI application (`providers.simulator.app:app`) for development, tests and
benchmarks: realistic latency per model class, token usage, JSON mode, tool calls
and injectable faults, with no network access and no framework on its hot path.
"""
