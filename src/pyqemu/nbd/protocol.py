"""NBD wire-format constants and fixed-size structures.

Numbers follow the NBD protocol specification (NetworkBlockDevice/nbd,
doc/proto.md).  Only the parts pyqemu speaks are named here; everything is
big-endian on the wire.
"""
from __future__ import annotations

import errno
import struct

# Handshake ---------------------------------------------------------------
NBDMAGIC = 0x4E42444D41474943          # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054          # "IHAVEOPT"
OLDSTYLE_MAGIC = 0x00420281861253
REPLY_MAGIC_OPT = 0x0003E889045565A9

FLAG_FIXED_NEWSTYLE = 1 << 0           # server handshake flags
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0         # client flags
FLAG_C_NO_ZEROES = 1 << 1

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_PEEK_EXPORT = 4
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_BIT = 1 << 31
REP_ERR_UNSUP = REP_ERR_BIT | 1
REP_ERR_POLICY = REP_ERR_BIT | 2
REP_ERR_INVALID = REP_ERR_BIT | 3
REP_ERR_PLATFORM = REP_ERR_BIT | 4
REP_ERR_TLS_REQD = REP_ERR_BIT | 5
REP_ERR_UNKNOWN = REP_ERR_BIT | 6
REP_ERR_SHUTDOWN = REP_ERR_BIT | 7
REP_ERR_BLOCK_SIZE_REQD = REP_ERR_BIT | 8
REP_ERR_TOO_BIG = REP_ERR_BIT | 9

INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# Transmission flags -------------------------------------------------------
TF_HAS_FLAGS = 1 << 0
TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_ROTATIONAL = 1 << 4
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6
TF_SEND_DF = 1 << 7
TF_CAN_MULTI_CONN = 1 << 8
TF_SEND_RESIZE = 1 << 9
TF_SEND_CACHE = 1 << 10
TF_SEND_FAST_ZERO = 1 << 11

# Requests -----------------------------------------------------------------
REQUEST_MAGIC = 0x25609513
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4

# Replies ------------------------------------------------------------------
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF
REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) | 1
REPLY_TYPE_ERROR_OFFSET = (1 << 15) | 2

STATE_HOLE = 1 << 0                    # base:allocation
STATE_ZERO = 1 << 1
CONTEXT_BASE_ALLOCATION = "base:allocation"

# Error numbers on the wire are fixed, whatever the host's errno values are.
NBD_EPERM = 1
NBD_EIO = 5
NBD_ENOMEM = 12
NBD_EINVAL = 22
NBD_ENOSPC = 28
NBD_EOVERFLOW = 75
NBD_ENOTSUP = 95
NBD_ESHUTDOWN = 108

_TO_WIRE = {
    errno.EPERM: NBD_EPERM, errno.EACCES: NBD_EPERM, errno.EROFS: NBD_EPERM,
    errno.EIO: NBD_EIO, errno.ENOMEM: NBD_ENOMEM, errno.EINVAL: NBD_EINVAL,
    errno.ENOSPC: NBD_ENOSPC, errno.EFBIG: NBD_ENOSPC, errno.EDQUOT: NBD_ENOSPC,
    errno.EOVERFLOW: NBD_EOVERFLOW, errno.ENOTSUP: NBD_ENOTSUP,
    errno.ESHUTDOWN: NBD_ESHUTDOWN,
}
_FROM_WIRE = {
    NBD_EPERM: errno.EPERM, NBD_EIO: errno.EIO, NBD_ENOMEM: errno.ENOMEM,
    NBD_EINVAL: errno.EINVAL, NBD_ENOSPC: errno.ENOSPC, NBD_EOVERFLOW: errno.EOVERFLOW,
    NBD_ENOTSUP: errno.ENOTSUP, NBD_ESHUTDOWN: errno.ESHUTDOWN,
}


def errno_to_wire(err: int) -> int:
    """Host errno -> NBD error; anything unknown becomes EINVAL as the spec asks."""
    return _TO_WIRE.get(err, NBD_EINVAL)


def wire_to_errno(err: int) -> int:
    return _FROM_WIRE.get(err, errno.EINVAL)


# Sizes a server enforces: QEMU's limit for one request's payload.
MAX_BUFFER = 32 * 1024 * 1024
MAX_OPTION_LENGTH = 64 * 1024          # no option a client sends needs more
MAX_STRING = 4096                      # export names, descriptions, contexts

# Structures -------------------------------------------------------------------
S_U16 = struct.Struct(">H")
S_U32 = struct.Struct(">I")
S_U64 = struct.Struct(">Q")
S_GREETING = struct.Struct(">QQH")               # NBDMAGIC, IHAVEOPT, flags
S_OPTION = struct.Struct(">QII")                 # IHAVEOPT, option, length
S_OPT_REPLY = struct.Struct(">QIII")             # magic, option, type, length
S_EXPORT_INFO = struct.Struct(">HQH")            # INFO_EXPORT, size, flags
S_BLOCK_SIZE_INFO = struct.Struct(">HIII")       # INFO_BLOCK_SIZE, min, pref, max
S_EXPORT_NAME_REPLY = struct.Struct(">QH")       # size, flags (old EXPORT_NAME)
S_REQUEST = struct.Struct(">IHHQQI")             # magic, flags, type, handle, offset, length
S_SIMPLE_REPLY = struct.Struct(">IIQ")           # magic, error, handle
S_CHUNK = struct.Struct(">IHHQI")                # magic, flags, type, handle, length
S_CHUNK_REST = struct.Struct(">HHQI")            # a chunk header after its magic
S_OFFSET = struct.Struct(">Q")
S_HOLE = struct.Struct(">QI")
S_ERROR = struct.Struct(">IH")                   # error, message length
S_EXTENT = struct.Struct(">II")                  # length, flags
