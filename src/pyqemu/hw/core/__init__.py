"""Core device infrastructure: qdev, buses, machines, the none machine."""
