"""x86 system mode, the CPU side: privileged state, segmentation, interrupts,
paging, MSRs and the fast system-call instructions.

Python 3.9 syntax: the translator (which PyPy runs) calls these helpers.
"""
