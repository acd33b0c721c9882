"""Benchmark readers (NB101 tfrecord, NB201 .pth, NATS-Bench .pickle.pbz2, shared CSVs) into one table type."""
