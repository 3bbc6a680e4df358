"""The arq worker: fetch -> decode -> Demucs -> encode -> store. Imports nothing from bots/."""
