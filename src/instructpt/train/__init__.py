"""Training: pre-training and continual pre-training (`pretrain.py`), instruction tuning
(`sft.py`), synthesizer fine-tuning (`synthesizer.py`), all on one loop (`loop.py`).
"""
