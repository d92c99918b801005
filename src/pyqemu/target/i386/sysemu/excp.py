"""Guest exceptions raised by system-mode helpers, with their error codes."""
from __future__ import annotations

from typing import Optional

from pyqemu.exec.cpu_loop import GuestException

EXCP_DE = 0
EXCP_DB = 1
EXCP_NMI = 2
EXCP_BP = 3
EXCP_OF = 4
EXCP_BR = 5
EXCP_UD = 6
EXCP_NM = 7
EXCP_DF = 8
EXCP_TS = 10
EXCP_NP = 11
EXCP_SS = 12
EXCP_GP = 13
EXCP_PF = 14
EXCP_MF = 16
EXCP_AC = 17
EXCP_MC = 18
EXCP_XM = 19

# Exceptions that push an error code when delivered (Intel SDM vol. 3 table 6-1).
ERROR_CODE_VECTORS = frozenset((EXCP_DF, EXCP_TS, EXCP_NP, EXCP_SS, EXCP_GP, EXCP_PF, EXCP_AC))


class CpuException(GuestException):
    """A fault or trap of the guest CPU: ``vector`` and its ``error_code``.

    It subclasses the translator's GuestException so cpu_exec's existing
    handler still sees ``excp``; system mode then delivers it through
    ``interrupt.do_interrupt``.
    """

    def __init__(self, vector: int, error_code: int = 0, next_pc: Optional[int] = None) -> None:
        super().__init__(vector, next_pc)
        self.vector = vector
        self.error_code = error_code


class TripleFault(Exception):
    """The CPU shut down (a fault while delivering a double fault): the machine
    must reset, or exit under ``-no-reboot``."""


class TaskSwitchUnsupported(NotImplementedError):
    """Hardware task switching (task gates, far jmp/call to a TSS) is not built yet."""


def raise_err(vector: int, error_code: int = 0) -> None:
    raise CpuException(vector, error_code)
