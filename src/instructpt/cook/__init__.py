"""Cooking: texts and their synthesized pairs rendered into plain pre-training text.

templates.py  every template (pair families, layouts, chain joiners) + TEMPLATE_SET_VERSION
render.py     pure rendering of one text or one M-shot chain, seeded per record
stage.py      the shard-to-shard stage (chain grouping, counting) and `cook()`
config.py     CookConfig
"""
