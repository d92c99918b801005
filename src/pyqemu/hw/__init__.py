"""Devices and boards, by kind, as in QEMU's hw/."""
