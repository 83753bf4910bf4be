"""The activations a layer of the built-in spaces may take: one list for the config and torch."""

from __future__ import annotations

#: Activation names, each mapped to a torch module where networks are built.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "silu", "linear")
