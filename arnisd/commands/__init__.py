"""CLI subcommands, one module each (see arnisd.cli)."""
