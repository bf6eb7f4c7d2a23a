"""Which partition Kafka's default partitioner gives a key: ``murmur2(key) & 0x7fffffff % partitions``. Pure.

The Java producer (and Flink's Kafka sink, which leaves keyed records to it) hashes keys with murmur2.
librdkafka-based clients (confluent-kafka, the load command) default to ``consistent_random`` (CRC32), which
puts the same key on a *different* partition; the load command sets ``partitioner=murmur2_random`` so its keys
land where a Java producer's would. Records without a key are spread by the client instead: Java's sticky
partitioner and librdkafka's ``sticky.partitioning.linger.ms`` (10 ms) both fill one partition for a while
before moving on, so null keys are balanced only over many batches.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: the 32-bit murmur2 hash of ``data`` as a signed int, as Java returns it.

    :param data: the key's bytes.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    body = length - length % 4
    for i in range(0, body, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[body + 2] << 16
    if rest >= 2:
        h ^= data[body + 1] << 8
    if rest >= 1:
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed record.

    :param key: the record key.
    :param partitions: the topic's partition count (>= 1).
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
