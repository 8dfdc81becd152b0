"""Corpus I/O: streaming readers, atomic shard writers, manifests and resume."""
