"""Light side of VMB Score: protocol, client, timeline, host gateway. Never imports torch or engine."""

__version__ = "0.1.0"
