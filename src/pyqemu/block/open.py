"""Opening and creating images: options trees in, node graphs out.

``open_image`` accepts a file name (``json:{...}`` included), or an options
tree as ``--image-opts``/``json:`` give it, and builds format node -> file
node (-> backing chain).  Protocol drivers are chosen by the ``driver`` key
or by a ``proto:`` prefix of the file name; more can be registered with
:func:`register_protocol` (NBD does so).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, List, Optional, Union

from pyqemu.block.file import FileNode, create_file
from pyqemu.block.node import (PERM_ALL, PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE,
                               PERM_WRITE_UNCHANGED, BlockNode)
from pyqemu.block.null import NullNode
from pyqemu.block.probe import probe_format
from pyqemu.block.raw import RawNode
from pyqemu.util.error import QemuError
from pyqemu.util.opts import parse_bool, parse_json_filename

CACHE_MODES = ("writeback", "writethrough", "none", "directsync", "unsafe")
FORMATS = ("raw", "qcow2")
# Format drivers in modules of their own, imported on first use.  A module
# provides open_format(tree, read_only, file) -> BlockNode and
# create(filename, size, options); optionally PRINT_ORDER/CREATE_HELP (for
# qemu-img create) and check_image(node, fix_leaks, fix_errors).
FORMAT_MODULES = {"vpc": "pyqemu.block.vpc", "vdi": "pyqemu.block.vdi", "vmdk": "pyqemu.block.vmdk",
                  "qed": "pyqemu.block.qed", "qcow": "pyqemu.block.qcow",
                  "parallels": "pyqemu.block.parallels", "vhdx": "pyqemu.block.vhdx",
                  "bochs": "pyqemu.block.bochs", "cloop": "pyqemu.block.cloop",
                  "luks": "pyqemu.block.luks", "dmg": "pyqemu.block.dmg"}


def format_module(name: str) -> Any:
    """The module implementing format ``name`` (a key of FORMAT_MODULES)."""
    import importlib
    return importlib.import_module(FORMAT_MODULES[name])

# name -> factory(options, read_only) for protocol drivers
_protocols: Dict[str, Callable[[Dict[str, Any], bool], BlockNode]] = {
    "file": lambda o, ro: FileNode(o, ro),
    "host_device": lambda o, ro: FileNode(o, ro),
    "null-co": lambda o, ro: NullNode(o, ro),
}
# URI prefix -> function turning the file name into an options tree
_prefixes: Dict[str, Callable[[str], Dict[str, Any]]] = {
    "null-co": lambda name: {"driver": "null-co"},
    "file": lambda name: {"driver": "file", "filename": name[5:]},
}


def register_protocol(name: str, factory: Callable[[Dict[str, Any], bool], BlockNode],
                      prefix: Optional[str] = None,
                      parse_filename: Optional[Callable[[str], Dict[str, Any]]] = None) -> None:
    """Add a protocol driver (e.g. ``nbd``), optionally reachable as ``prefix:...`` names."""
    _protocols[name] = factory
    if prefix and parse_filename:
        _prefixes[prefix] = parse_filename


def format_names() -> List[str]:
    return sorted(set(FORMATS) | set(FORMAT_MODULES) | set(_protocols))


def cache_options(cache: str) -> Dict[str, Any]:
    """``-t``/``cache=`` mode -> (``cache.direct``, ``cache.no-flush``, writethrough)."""
    if cache not in CACHE_MODES:
        raise QemuError("Invalid cache option: %s" % cache)
    return {"direct": cache in ("none", "directsync"), "no-flush": cache == "unsafe",
            "writethrough": cache in ("writethrough", "directsync")}


def _protocol_tree(name: str) -> Dict[str, Any]:
    if ":" in name and not name.startswith("/") and not name.startswith("./"):
        prefix = name.split(":", 1)[0]
        if "/" not in prefix and prefix in _prefixes:
            return _prefixes[prefix](name)
        if "/" not in prefix and prefix in ("nbd", "nbd+unix", "http", "https", "ssh", "iscsi"):
            raise QemuError("Unknown protocol '%s'" % prefix)
    return {"driver": "file", "filename": name}


def _as_tree(spec: Union[str, Dict[str, Any]]) -> Dict[str, Any]:
    if isinstance(spec, dict):
        return dict(spec)
    if spec.startswith("json:"):
        return parse_json_filename(spec)
    return {"file": spec}


def _bool(tree: Dict[str, Any], key: str, default: bool) -> bool:
    v = tree.get(key)
    if v is None:
        return default
    return v if isinstance(v, bool) else parse_bool(key, str(v))


class _Ctx:
    """What the whole open of one chain shares."""

    def __init__(self, cache: str, force_share: bool, no_backing: bool, allow_probe_warning: bool):
        self.cache = cache
        self.force_share = force_share
        self.no_backing = no_backing
        self.warn_probe = allow_probe_warning
        self.chain: List[str] = []


def _open_protocol(tree: Dict[str, Any], read_only: bool, ctx: _Ctx) -> BlockNode:
    driver = tree.get("driver", "file")
    if driver not in _protocols:
        raise QemuError("Unknown driver '%s'" % driver)
    c = cache_options(ctx.cache)
    cache = dict(tree.get("cache") or {})
    cache.setdefault("direct", c["direct"])
    cache.setdefault("no-flush", c["no-flush"])
    tree = dict(tree, cache=cache)
    node = _protocols[driver](tree, read_only)
    if isinstance(node, FileNode):
        node.writethrough = c["writethrough"]
    return node


def _apply_perms(fmt_node: BlockNode, file_node: BlockNode, read_only: bool, ctx: _Ctx) -> None:
    """Locks on the file child, with the permissions QEMU's qemu-img would take."""
    if not isinstance(file_node, FileNode):
        return
    if ctx.force_share:
        shared = PERM_ALL
    else:
        shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED
    perm = PERM_CONSISTENT_READ
    if not read_only:
        perm |= PERM_WRITE | PERM_RESIZE
    if not ctx.force_share:
        if fmt_node.has_metadata:
            shared &= ~(PERM_WRITE | PERM_RESIZE)
        elif fmt_node is not file_node:
            shared &= ~PERM_RESIZE
    file_node.set_perm(perm, shared)


def open_node(spec: Union[str, Dict[str, Any]], fmt: Optional[str] = None, readonly: bool = True,
              force_share: bool = False, cache: str = "writeback", backing: Any = "auto",
              no_backing: bool = False, _ctx: Optional[_Ctx] = None) -> BlockNode:
    """See :func:`open_image`."""
    tree = _as_tree(spec)
    ctx = _ctx or _Ctx(cache, force_share, no_backing, True)
    if "cache" in tree and isinstance(tree["cache"], dict):
        if _bool(tree["cache"], "direct", False):
            ctx.cache = "none"
    force = _bool(tree, "force-share", ctx.force_share)
    if force and not readonly:
        raise QemuError("force-share=on can only be used with read-only images")
    ctx.force_share = force
    read_only = readonly or _bool(tree, "read-only", False)
    driver = fmt or tree.get("driver")
    if driver in _protocols and "file" not in tree:
        node = _open_protocol(dict(tree, driver=driver), read_only, ctx)
        _apply_perms(node, node, read_only, ctx)
        return node
    file_spec = tree.get("file")
    if file_spec is None:
        if driver and driver not in FORMATS and driver not in _protocols and driver not in FORMAT_MODULES:
            raise QemuError("Unknown driver '%s'" % driver)
        raise QemuError("A block device must be specified for \"file\"")
    if isinstance(file_spec, str):
        name = file_spec
        ftree = _protocol_tree(name)
    else:
        ftree = dict(file_spec)
        name = ftree.get("filename", "")
    fdrv = ftree.get("driver")
    if fdrv in FORMATS or fdrv in FORMAT_MODULES:
        # a format over a format (raw with an offset inside a qcow2 file, ...)
        file_node = open_node(ftree, readonly=read_only, _ctx=ctx)
    else:
        file_node = _open_protocol(ftree, read_only, ctx)
    probed = False
    try:
        if driver is None:
            head = file_node.pread(0, min(2048, file_node.length()))
            driver = probe_format(head, name)
            probed = True
        if driver == "raw":
            node: BlockNode = RawNode(tree, read_only, file_node, probed=probed)
            if probed and not read_only and ctx.warn_probe:
                # QEMU prints this one without the program-name prefix
                sys.stderr.write("WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                                 "         Automatically detecting the format is dangerous for raw images, "
                                 "write operations on block 0 will be restricted.\n"
                                 "         Specify the 'raw' format explicitly to remove the restrictions.\n"
                                 % name)
                sys.stderr.flush()
        elif driver == "qcow2":
            from pyqemu.block.qcow2.encrypt import open_qcow2
            node = open_qcow2(tree, read_only, file_node)
        elif driver in FORMAT_MODULES:
            node = format_module(driver).open_format(tree, read_only, file_node)
        elif driver in _protocols:
            raise QemuError("'%s' is not a format driver" % driver)
        else:
            raise QemuError("Unknown driver '%s'" % driver)
        _apply_perms(node, file_node, read_only, ctx)
        if node.supports_backing:
            _open_backing(node, tree, ctx)
    except BaseException:
        file_node.close()
        raise
    return node


def _open_backing(node: BlockNode, tree: Dict[str, Any], ctx: _Ctx) -> None:
    spec = tree.get("backing", "auto") if "backing" in tree else "auto"
    if spec is None or spec == "null":
        return
    if ctx.no_backing and spec == "auto":
        return
    if spec == "auto":
        name = node.backing_filename()
        if not name:
            return
        path = resolve_backing_path(node.filename, name)
        bspec: Union[str, Dict[str, Any]] = path
        bfmt = node.backing_format()
    else:
        bspec = spec if isinstance(spec, (dict, str)) else str(spec)
        bfmt = None
        path = bspec if isinstance(bspec, str) else str(bspec.get("file", ""))
    if isinstance(path, str) and "\0" in path:
        raise QemuError("Could not open backing file: Could not open '%s': Invalid argument"
                        % path.replace("\0", "\\0"))
    key = os.path.realpath(path) if isinstance(path, str) and not path.startswith("json:") else path
    ctx.chain.append(os.path.realpath(node.filename))
    if key in ctx.chain or len(ctx.chain) > 1000:
        raise QemuError("Backing file '%s' creates an infinite loop." % path)
    try:
        node.backing = open_node(bspec, fmt=bfmt, readonly=True, force_share=ctx.force_share,
                                 cache=ctx.cache, _ctx=ctx)
    except QemuError as exc:
        raise exc.prefixed("Could not open backing file") from None


def resolve_backing_path(image: str, backing: str) -> str:
    """A relative backing file name is relative to the overlay's directory."""
    if backing.startswith("json:") or os.path.isabs(backing) or ":" in backing.split("/")[0]:
        return backing
    d = os.path.dirname(image)
    return os.path.join(d, backing) if d else backing


def open_image(spec: Union[str, Dict[str, Any]], fmt: Optional[str] = None, readonly: bool = True,
               force_share: bool = False, cache: str = "writeback", backing: Any = "auto",
               no_backing: bool = False) -> BlockNode:
    """Open an image and return its top node.

    ``spec`` is a file name, ``json:{...}``, or an options tree (as from
    ``--image-opts``).  ``fmt`` names the format (probed if None).
    ``backing``: ``"auto"`` opens the backing file the image names, ``None``
    opens none (as ``backing=null``), a tree/file name opens that instead.
    ``no_backing=True`` skips the backing file as ``qemu-img info`` does.
    """
    if backing != "auto":
        tree = _as_tree(spec)
        tree["backing"] = backing
        spec = tree
    node = open_node(spec, fmt, readonly, force_share, cache, no_backing=no_backing)
    return node


def open_image_for_cli(name: str, fmt: Optional[str] = None, **kw: Any) -> BlockNode:
    """``open_image`` with QEMU's ``Could not open 'name': `` prefix on errors."""
    try:
        return open_image(name, fmt, **kw)
    except QemuError as exc:
        raise exc.prefixed("Could not open '%s'" % name) from None


def create_image(fmt: str, filename: str, size: int, options: Optional[Dict[str, Any]] = None) -> None:
    """Create an image file of format ``fmt`` (``-o`` options as a dict of strings)."""
    options = dict(options or {})
    if fmt in ("raw", "qcow2"):
        size = -(-size // 512) * 512  # QEMU's drivers round the size up to whole sectors
    if fmt == "raw":
        prealloc = options.pop("preallocation", "off")
        options.pop("nocow", None)
        if options:
            raise QemuError("Invalid parameter '%s'" % next(iter(options)))
        create_file(filename, size, prealloc)
    elif fmt == "qcow2":
        from pyqemu.block.qcow2.create import create_qcow2
        create_qcow2(filename, size, options)
    elif fmt in FORMAT_MODULES:
        format_module(fmt).create(filename, size, options)
    elif fmt in _protocols and fmt == "file":
        create_file(filename, size, options.get("preallocation", "off"))
    else:
        raise QemuError("Unknown file format '%s'" % fmt)
