"""Command-line programs: argument parsing and output only.

Each module has a ``main()`` used as a console script; the work is done by
the library packages.  Only this package turns errors into messages and exit
codes (see :func:`pyqemu.util.error.run_main`).
"""
