"""Talking to upstream LLM servers: one attempt, retry timing and circuit breakers."""
