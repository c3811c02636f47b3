"""The event contract as data: one ``.avsc`` file per event type and ``topics.yaml``.

Installed as ``agentflux.contract`` (a data package: no code); the Python that reads it is
``agentflux.schemas``.
"""
