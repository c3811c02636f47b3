"""Benchmarks of agentflux against raw aiokafka, run side by side on the same broker."""
