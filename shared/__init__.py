"""Code the frontends (bots/) and the worker (worker/) agree on.

Nothing here imports bots/ or worker/.
"""
