"""The VMB engine: describe -> retrieve -> generate, served by a daemon. Only here is torch used."""

__version__ = "0.1.0"
