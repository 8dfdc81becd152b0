"""instructpt: Instruction Pre-Training end to end.

Raw text in; instruction-augmented pre-training data, trained models, evaluations
and a report out. See README.md for the pipeline and DESIGN notes.
"""

__version__ = "0.1.0"
