"""Headless subcommands of ``main.py``. Each module has ``register(subparsers)`` and sets
``func`` on its parsers; handlers return an exit code (0 ok, 2 bad input, 1 failure)."""
