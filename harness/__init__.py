"""harness: an evaluation-first benchmark harness for LLM embedding methods.

Import cost matters here: this package and its CLI import torch, transformers and mteb only inside
the functions that need them, so ``harness --help`` stays fast.
"""

__version__ = "0.2.0"
