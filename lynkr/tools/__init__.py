"""lynkr's own tools: the registry, the policy engine, and the tool implementations."""
