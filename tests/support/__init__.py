"""Test helpers: audio generation, a random-weight Demucs model repo, local servers."""
