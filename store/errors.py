"""The index's error base, apart from store/index.py: that module imports chromadb and LangChain
(seconds), and naming a knowledge base or catching its errors must not wait for them."""


class IndexError_(RuntimeError):
    """Base of the index's own errors (named to stay clear of the builtin IndexError)."""
