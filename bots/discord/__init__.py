"""The Discord bot: /stem, the "Split stems" message menu, a Cancel button, progress."""
