"""GDB remote serial protocol (shared by user and system emulation)."""
