# Types of the C extension built from _batches.c.

class Record:
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def timestamp_type(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def checksum(self) -> None: ...
    @property
    def serialized_key_size(self) -> int: ...
    @property
    def serialized_value_size(self) -> int: ...
    @property
    def headers(self) -> tuple[tuple[str, bytes | None], ...]: ...

def read_records(  # the batch header's fields, read on the Python side
    source: bytes,
    start: int,
    end: int,
    count: int,
    base_offset: int,
    first_timestamp: int,
    log_append_time: int,
    max_timestamp: int,
    topic: str,
    partition: int,
    min_offset: int,
    /,
) -> list[Record]: ...
