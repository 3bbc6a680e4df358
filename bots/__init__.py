"""Frontends: thin adapters from a platform to the shared core."""
