"""PC devices (see docs/pc.md)."""
