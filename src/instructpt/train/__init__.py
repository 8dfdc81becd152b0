"""Training: synthesizer fine-tuning (`synthesizer.py`, `synth_data.py`) and a minimal loop.

`loop.py` is a stand-in that the Training issue (#8) will absorb or replace.
"""
