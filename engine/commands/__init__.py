"""`vmb` command groups, one module each (see engine.cli.COMMAND_MODULES)."""
