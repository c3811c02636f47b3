"""The write side of agentflux: the event publisher and the old bus's API on Kafka."""

__all__: list[str] = []
