"""A stand-in container engine for the host shim's unit tests (see engine.py)."""
