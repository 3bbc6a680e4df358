"""Entry points: build dependencies and start the processes."""

#: The workers' queues, by the names `stembot worker --queue` takes.
QUEUES = ("separate", "download")
