"""deploykit's version, in a module of its own so that anything (environment records, the servers, the CLI)
can read it without importing the root package's API (pyproject.toml reads it from here too)."""

__version__ = "0.1.0"
