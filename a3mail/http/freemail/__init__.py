"""The freemail API (see docs/tempmail.md): its own HTTP listener, ``freemail``."""
