"""Light side of VMB Score: protocol, client, timeline, gateway. Never imports torch or engine."""

__version__ = "0.1.0"
