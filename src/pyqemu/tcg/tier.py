"""Tiering: a new block is interpreted first and compiled to Python once it is hot.

``PyCodegen.compile`` hands out the function made here.  It runs the block
with the IR interpreter (``interp``) and counts its runs (a self-loop's
iterations count too); at the ``hot_threshold()``-th run the block is
compiled to Python and from then on that code runs.  If the block heads a
loop of several blocks, the whole loop is compiled into one function
(``region``).  The TB cache attaches each TB that holds the function
(``tier_attach``), so the compiled code also replaces ``TB.fn`` and the
execution loop calls it directly, without this wrapper.

``PYQEMU_TCG_HOT`` sets the threshold: a number of runs, ``0`` to compile
every block at once (the backend alone, no interpreter and no regions) or
``never`` to interpret everything (both are used to test that the tiers
agree).  ``PYQEMU_TCG_REGIONS=0`` compiles hot blocks one by one.
"""
from __future__ import annotations

import os
from typing import Callable, List

from pyqemu.tcg import interp, region
from pyqemu.tcg.optimize import ensure_optimized
from pyqemu.util import log

DEFAULT_HOT = 20
NEVER = -1

_settings: dict = {}


def _from_env() -> int:
    v = os.environ.get("PYQEMU_TCG_HOT", "").strip().lower()
    if v == "never":
        return NEVER
    try:
        n = int(v)
    except ValueError:
        return DEFAULT_HOT
    return n if n >= 0 else NEVER


def hot_threshold() -> int:
    """Runs after which a block is compiled: 0 = at once, NEVER = interpret only."""
    if "hot" not in _settings:
        _settings["hot"] = _from_env()
    return _settings["hot"]


def set_hot_threshold(n: int) -> None:
    """Override the threshold for blocks translated from now on (tests, benchmarks)."""
    _settings["hot"] = n


def regions_enabled() -> bool:
    if "regions" not in _settings:
        _settings["regions"] = os.environ.get("PYQEMU_TCG_REGIONS", "1").strip() != "0"
    return _settings["regions"]


def set_regions(on: bool) -> None:
    _settings["regions"] = on


def lazy_optimize() -> bool:
    """Whether translators may leave new blocks unoptimized (``tiered`` optimizes them).

    Most blocks run a few times only: interpreting their IR as decoded costs
    less than optimizing it.  A block is optimized when it gets hot, just
    before it is compiled.  Blocks compiled at once (threshold 0, or
    ``-d out_asm``, as ``PyCodegen.compile`` decides) and ``-d op_opt`` need
    the optimized IR right away.
    """
    return hot_threshold() != 0 and not log.enabled("out_asm") and not log.enabled("op_opt")


def tiered(gen, name: str, threshold: int, loop_limit: int) -> Callable:
    """The function of a new block: interpreted, compiled by ``gen`` once hot."""
    runs = 0
    tbs: List = []
    caches: List = []
    block, mem, restore = gen.block, gen.mem, gen.restore

    def install(f: Callable, src: str) -> None:
        nonlocal run
        run = f
        for tb in tbs:
            if tb.valid:
                tb.fn = f
                tb.src = src

    def single(env):
        # the head of an invalidated region: back to this block's own code
        from pyqemu.tcg.backend_py import PyCodegen
        ensure_optimized(block)
        f, src = PyCodegen(block, mem, restore).compile_python(name)
        install(f, src)
        return f(env)

    def promote() -> Callable:
        nonlocal gen
        if gen is None:
            return run
        g, gen = gen, None
        ensure_optimized(block)
        if tbs and caches and regions_enabled():
            head, cache = tbs[0], caches[0]
            members = region.find_loop(head, cache.pc_map(head.cs_base, head.flags))
            for tb in members:
                ensure_optimized(tb.block)
            rfn = region.compile_region(members, mem, restore) if members else None
            if rfn is not None:
                def stop() -> None:
                    rfn.region_valid[0] = False
                    if run is rfn:
                        install(single, "")
                for tb in members:
                    if tb.pc in rfn.region_pcs:
                        tb.regions.append(stop)
                install(rfn, rfn.region_src)
                return rfn
        f, src = g.compile_python(name)
        install(f, src)
        return f

    def attach(tb, cache) -> None:
        tb.block = block
        tbs.append(tb)
        caches.append(cache)

    # A self-loop's iterations count as runs: one call of a cold loop may
    # iterate up to loop_limit times.
    hot_loop = threshold if threshold > 0 else 0
    run = interp.build(block, mem, restore, loop_limit, hot_loop, promote)

    def fn(env):
        nonlocal runs
        runs += 1
        if runs == threshold:
            promote()
        return run(env)
    fn.tier_attach = attach
    return fn
