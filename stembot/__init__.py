"""Entry points: build dependencies and start the processes."""
