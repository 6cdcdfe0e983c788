"""Backbones (aliases, hub ids, folders, GGUF dequantisation) and packed sequences."""
