"""The engine daemon: ZeroMQ ROUTER, SQLite job store, supervised worker process."""
