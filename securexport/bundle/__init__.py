"""The container (DESIGN.md §4): writing and opening bundles, the strict ZIP structure checker,
and the checks of decrypted plaintext against its approval (DESIGN.md §8.4)."""
