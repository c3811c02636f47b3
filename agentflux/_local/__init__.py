"""The local platform launcher: Kafka (KRaft) and Apicurio Registry as processes, no Docker."""

from agentflux._local._artifacts import Artifacts, ArtifactsError, fetch_artifacts
from agentflux._local._cluster import ClusterError, ClusterState, LocalCluster, NodeState
from agentflux._local._gclog import GcPause, read_gc_pauses
from agentflux._local._java import JavaNotFoundError, find_java

__all__ = [
    "Artifacts",
    "ArtifactsError",
    "ClusterError",
    "ClusterState",
    "GcPause",
    "JavaNotFoundError",
    "LocalCluster",
    "NodeState",
    "fetch_artifacts",
    "find_java",
    "read_gc_pauses",
]
