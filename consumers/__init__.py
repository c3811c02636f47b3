"""The read side of agentflux: the consumer-group runner, stores, and the shipped groups."""

__all__: list[str] = []
