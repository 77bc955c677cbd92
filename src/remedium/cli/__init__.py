"""The ``remedium`` command line (Typer + Rich)."""
