"""The qcow2 format driver (versions 2 and 3).

Modules: ``header`` (the on-disk header and its extensions), ``refcount``
(refcount table/blocks and cluster allocation), ``driver`` (the node: L1/L2
mapping, reads, writes with copy-on-write, block status), ``create``
(``qemu-img create -f qcow2``), ``check`` (consistency check and repair).
"""
