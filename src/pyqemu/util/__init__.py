"""Shared machinery for every program: options, errors, logging, units, URIs.

This package is imported by the translator and user-mode core, so it keeps to
Python 3.9 syntax (see docs/architecture.md).
"""
