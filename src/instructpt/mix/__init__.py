"""The `mix` stage: the paper's recipes (vanilla, instruct, mix, domain) with token-exact ratios.

- `recipes.py`: pure selection functions over (key, tokens) items; no I/O.
- `inputs.py`: reading the three kinds of input (documents, cooked texts, general records).
- `stage.py`: `MixConfig` and the stage (encode once, select, shuffle, write shards).
- `parquet.py`: export of the mixed text as parquet for other training stacks.
"""
