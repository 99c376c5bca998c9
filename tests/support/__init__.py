"""Test helpers importable as `support.*` (tests/ is put on sys.path by conftest)."""
