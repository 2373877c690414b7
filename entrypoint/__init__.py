"""The `cluster-rl` container entrypoint: a Typer CLI over the `rl` library."""
