"""The cluster simulator: fault catalogue, scenario knobs and the compiled simulation core."""
