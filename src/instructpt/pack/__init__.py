"""Tokenizers, tokenizing and packing mixed text into flat token shards, and their reader.

- `tokenizer.py`: load any Hugging Face tokenizer directory, or train a byte-level BPE.
- `tokenize.py`: the `tokenize` stage (mixed text shards -> packed token shards + index).
- `reader.py`: fixed-length sequences out of the token shards, for the training loop.
"""
