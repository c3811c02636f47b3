"""The read side of agentflux: the consumer-group runner, stores, and the shipped groups."""

from consumers._ports import Store, Transaction, View
from consumers._records import Position
from consumers._stores import PostgresStore, SqliteStore, open_store

__all__ = ["Position", "PostgresStore", "SqliteStore", "Store", "Transaction", "View", "open_store"]
