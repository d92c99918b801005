"""pyqemu-img check: exit 0 clean, 1 check failed, 2 corruptions, 3 leaks, 63 unsupported."""
from __future__ import annotations

import sys
from typing import List

from pyqemu.cli.img import img_open, out, parse_args, parse_output
from pyqemu.cli.img_json import to_json_pretty
from pyqemu.util.error import QemuError, UsageError, error_report
from pyqemu.qom.cmdline import add_object_from_cmdline


def _human(r, quiet: bool) -> None:
    if not (r.corruptions or r.leaks or r.check_errors):
        out("No errors were found on the image.\n", quiet)
    else:
        if r.corruptions:
            out("\n%d errors were found on the image.\nData may be corrupted, or further writes to "
                "the image may corrupt it.\n" % r.corruptions, quiet)
        if r.leaks:
            out("\n%d leaked clusters were found on the image.\nThis means waste of disk space, "
                "but no harm to data.\n" % r.leaks, quiet)
        if r.check_errors:
            out("\n%d internal errors have occurred during the check.\n" % r.check_errors, quiet)
    if r.total_clusters and r.allocated_clusters:
        out("%d/%d = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n"
            % (r.allocated_clusters, r.total_clusters, r.allocated_clusters * 100.0 / r.total_clusters,
               r.fragmented_clusters * 100.0 / r.allocated_clusters,
               r.compressed_clusters * 100.0 / r.allocated_clusters), quiet)
    if r.image_end_offset:
        out("Image end offset: %d\n" % r.image_end_offset, quiet)


def _json(r, filename: str, fmt: str) -> str:
    d = {"filename": filename, "format": fmt, "check-errors": r.check_errors}
    for key, val in (("image-end-offset", r.image_end_offset), ("corruptions", r.corruptions),
                     ("leaks", r.leaks), ("corruptions-fixed", r.corruptions_fixed),
                     ("leaks-fixed", r.leaks_fixed), ("total-clusters", r.total_clusters),
                     ("allocated-clusters", r.allocated_clusters),
                     ("fragmented-clusters", r.fragmented_clusters),
                     ("compressed-clusters", r.compressed_clusters)):
        if val:
            d[key] = val
    return to_json_pretty(d) + "\n"


def main(argv: List[str]) -> int:
    opts, args = parse_args(argv, "f:r:T:qU", ["output=", "image-opts", "force-share", "object=",
                                               "format=", "repair="])
    fmt = None
    output = "human"
    fix = ""
    quiet = False
    image_opts = False
    force = False
    cache = "writeback"
    for k, v in opts:
        if k in ("-f", "--format"):
            fmt = v
        elif k == "--output":
            output = parse_output(v)
        elif k in ("-r", "--repair"):
            if v not in ("leaks", "all"):
                raise QemuError("Unknown option value for -r (expecting 'leaks' or 'all'): %s" % v)
            fix = v
        elif k == "-q":
            quiet = True
        elif k == "--image-opts":
            image_opts = True
        elif k in ("-U", "--force-share"):
            force = True
        elif k == "-T":
            cache = v
        elif k == "--object":
            add_object_from_cmdline(v)
    if len(args) != 1:
        raise UsageError("Expecting one image file name")
    if fix and force:
        raise QemuError("--force-share/-U is not allowed with -r")
    filename = args[0]
    node = img_open(filename, fmt, image_opts, readonly=not fix, force_share=force, cache=cache,
                    no_backing=True)
    try:
        if node.driver == "qcow2":
            from pyqemu.block.qcow2.check import check_image
        else:
            from pyqemu.block.open import FORMAT_MODULES, format_module
            check_image = getattr(format_module(node.driver), "check_image", None) \
                if node.driver in FORMAT_MODULES else None
            if check_image is None or (fix and not getattr(check_image, "repairs", True)):
                error_report("This image format does not support checks")
                return 63
        r = check_image(node, fix_leaks=bool(fix), fix_errors=fix == "all", quiet=False)
        if r.leaks_fixed or r.corruptions_fixed:
            if output == "human":
                out("The following inconsistencies were found and repaired:\n\n"
                    "    %d leaked clusters\n    %d corruptions\n\n"
                    "Double checking the fixed image now...\n" % (r.leaks_fixed, r.corruptions_fixed),
                    quiet)
            fixed_l, fixed_c = r.leaks_fixed, r.corruptions_fixed
            r = check_image(node, quiet=False)
            r.leaks_fixed, r.corruptions_fixed = fixed_l, fixed_c
        if output == "json":
            sys.stdout.write(_json(r, filename, node.driver))
        else:
            _human(r, quiet)
    finally:
        node.close()
    if r.check_errors:
        return 1
    if r.corruptions:
        return 2
    if r.leaks:
        return 3
    return 0
