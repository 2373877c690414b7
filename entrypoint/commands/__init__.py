"""One module per `cluster-rl` command. Heavy imports (torch, numba) happen inside the commands."""
