"""opencite: cited answers over your team's web pages from an open LLM you run yourself."""

__version__ = "0.1.0"
