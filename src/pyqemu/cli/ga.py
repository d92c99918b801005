"""pyqemu-ga: the guest agent's command line (QEMU's qemu-ga options)."""
from __future__ import annotations

import fcntl
import getopt
import os
import sys
from typing import List, Optional, Sequence

from pyqemu.util.error import QemuError, get_progname, run_main

SHORT = "hVvdm:p:l:f:b:t:Drc:"
LONG = ["help", "version", "verbose", "daemonize", "method=", "path=", "logfile=", "pidfile=",
        "fsfreeze-hook=", "block-rpcs=", "blacklist=", "statedir=", "dump-conf", "retry-path",
        "config="]

USAGE = """Usage: %(p)s [-m <method> -p <path>] [<options>]
%(v)s

  -m, --method      transport: unix-listen, virtio-serial (the default),
                    isa-serial or vsock-listen
  -p, --path        device or socket path; virtio-serial defaults to
                    /dev/virtio-ports/org.qemu.guest_agent.0, isa-serial to
                    /dev/ttyS0; vsock-listen takes <cid>:<port>
  -l, --logfile     log to this file instead of stderr
  -f, --pidfile     pid file (default /var/run/qemu-ga.pid)
  -F, --fsfreeze-hook
                    run a hook script with 'freeze' before and 'thaw' after
                    freezing filesystems; an optional argument names the
                    script, written without a space: -F/path/to/hook
                    (default /etc/qemu/fsfreeze-hook)
  -t, --statedir    absolute directory for state files (default /var/run)
  -v, --verbose     log debugging detail
  -V, --version     print the version and exit
  -d, --daemonize   run in the background
  -b, --block-rpcs  comma-separated RPCs to refuse ('help' or '?' lists them)
  -D, --dump-conf   print the configuration file equivalent to the options
                    given, then exit
  -r, --retry-path  reopen the path when it goes away (hot-unplug)
  -c, --config      configuration file (default $QGA_CONF, else
                    /etc/qemu/qemu-ga.conf)
  -h, --help        print this help and exit
"""


def _getopt_error(exc: getopt.GetoptError, argv: Sequence[str]) -> int:
    opt = exc.opt
    prog = get_progname()
    if "requires argument" in exc.msg:
        if len(opt) == 1:
            sys.stderr.write("%s: option requires an argument -- '%s'\n" % (prog, opt))
        else:
            sys.stderr.write("%s: option '--%s' requires an argument\n" % (prog, opt))
    elif len(opt) == 1:
        sys.stderr.write("%s: invalid option -- '%s'\n" % (prog, opt))
    else:
        sys.stderr.write("%s: unrecognized option '--%s'\n" % (prog, opt))
    sys.stderr.write("Unknown option, try '%s --help' for more information.\n" % prog)
    return 1


def _optional_hook(argv: Sequence[str]) -> List[str]:
    """getopt cannot express -F's optional argument; spell it out first."""
    out = []
    for a in argv:
        if a in ("-F", "--fsfreeze-hook"):
            out.append("--fsfreeze-hook=")
        elif a.startswith("-F"):
            out.append("--fsfreeze-hook=" + a[2:])
        else:
            out.append(a)
    return out


def _main(argv: List[str]) -> int:
    from pyqemu.qga import config as conf
    from pyqemu.qga.agent import VERSION, AgentConfig
    from pyqemu.qga.commands import ORDER

    try:
        opts, rest = getopt.gnu_getopt(_optional_hook(argv), SHORT, LONG)
    except getopt.GetoptError as exc:
        return _getopt_error(exc, argv)
    cfg = AgentConfig()
    explicit_conf = None
    for o, v in opts:
        if o in ("-c", "--config"):
            explicit_conf = v
    conf.load_file(cfg, conf.conf_path(explicit_conf))
    dump = False
    cli_blocked: List[str] = []
    for o, v in opts:
        if o in ("-h", "--help"):
            sys.stdout.write(USAGE % {"p": get_progname(), "v": "pyqemu-ga %s (QEMU Guest Agent %s)"
                                      % (VERSION, VERSION)})
            return 0
        if o in ("-V", "--version"):
            print("QEMU Guest Agent %s" % VERSION)
            return 0
        if o in ("-m", "--method"):
            cfg.method = v
        elif o in ("-p", "--path"):
            cfg.path = v
        elif o in ("-l", "--logfile"):
            cfg.logfile = v
        elif o in ("-f", "--pidfile"):
            cfg.pidfile = v
        elif o in ("-F", "--fsfreeze-hook"):
            cfg.fsfreeze_hook = v or conf.DEFAULT_HOOK
        elif o in ("-t", "--statedir"):
            cfg.statedir = v
        elif o in ("-v", "--verbose"):
            cfg.verbose = True
        elif o in ("-d", "--daemonize"):
            cfg.daemonize = True
        elif o in ("-D", "--dump-conf"):
            dump = True
        elif o in ("-r", "--retry-path"):
            cfg.retry_path = True
        elif o in ("-b", "--block-rpcs", "--blacklist"):
            if v in ("help", "?"):
                sys.stdout.write("".join(n + "\n" for n in ORDER))
                return 0
            cli_blocked += conf.split_rpcs(v)
    cfg.blocked += cli_blocked
    conf.finalize(cfg)
    if dump:
        sys.stdout.write(conf.dump(cfg))
        return 0
    return run_agent(cfg)


def _write_pidfile(path: str) -> Optional[int]:
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise QemuError("Cannot open pid file, %s" % os.strerror(exc.errno or 5)) from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise QemuError("Cannot lock pid file, %s" % os.strerror(11)) from None
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    return fd


def _daemonize() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def run_agent(cfg) -> int:
    from pyqemu.qga import log
    from pyqemu.qga.agent import Agent
    from pyqemu.qga.channel import Channel

    if not os.path.isabs(cfg.statedir):
        raise QemuError("statedir must be an absolute path")
    pid_fd = None
    if cfg.daemonize:
        _daemonize()
        # Like qemu-ga, only a daemon records its pid.
        pid_fd = _write_pidfile(cfg.pidfile)
    log.setup(cfg.logfile, cfg.verbose)
    try:
        try:
            agent = Agent(cfg)
        except QemuError as exc:
            log.critical(str(exc))
            log.critical("failed to load persistent state")
            return 1
        chan = Channel(agent, cfg.method, cfg.path, cfg.retry_path)
        chan.install_signals()
        try:
            chan.open_retrying()
        except QemuError as exc:
            from pyqemu.qga.channel import ChannelError
            log.critical(str(exc))
            if isinstance(exc, ChannelError):
                log.critical("failed to create guest agent channel")
            log.critical("failed to initialize guest agent channel")
            return 1
        log.debug("guest agent started")
        try:
            chan.run()
        finally:
            chan.close()
            agent.close()
        return 0
    finally:
        if pid_fd is not None:
            os.close(pid_fd)
            try:
                os.unlink(cfg.pidfile)
            except OSError:
                pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Console entry point: errors become ``pyqemu-ga: message`` and exit 1."""
    return run_main(_main, "pyqemu-ga", argv)


if __name__ == "__main__":
    sys.exit(main())
