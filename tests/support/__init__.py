"""Test support: a fake Flink on loopback and a fault-injecting proxy."""
