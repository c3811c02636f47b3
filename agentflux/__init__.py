"""agentflux: the command line and control plane (local cluster, topics, replay)."""

__all__: list[str] = []
