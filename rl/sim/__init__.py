"""The cluster simulator: scenario knobs (`scenario`), the state of N clusters (`batch`), the compiled
kernels that step them (`kernels`) and the tables they read (`layout`), and one cluster behind the
backend interface (`backend`)."""
