"""The virtual SIM lab: a private pcscd with vpcd readers serving virtual UICCs.

``Lab.up()`` starts one (``simtool lab up`` on the command line), ``Lab.find()``
finds the running one; set ``lab.pcsc_environment()`` in a process's
environment before it first uses pyscard, and it sees the lab's readers.
"""

from typing import Any

from simtool.lab.errors import (
    LabConflictError,
    LabError,
    LabNotRunningError,
    LabPermissionError,
    LabStartError,
    SlotError,
    StockFileExistsError,
)
from simtool.lab.launcher import (
    Lab,
    explain_missing_service,
    is_lab_socket,
    pcsc_environment,
    write_lab_stock_file,
)
from simtool.lab.layout import MAX_SLOTS, PCSC_SOCKET_ENV, READER_PREFIX, default_labdir
from simtool.lab.processes import SystemPcscd, find_system_pcscd
from simtool.lab.state import SlotInfo
from simtool.lab.stock import lab_card_profiles, stock_csv, write_stock_file

__all__ = [
    "MAX_SLOTS",
    "PCSC_SOCKET_ENV",
    "READER_PREFIX",
    "STOCK_COLUMNS",
    "Lab",
    "LabConflictError",
    "LabError",
    "LabNotRunningError",
    "LabPermissionError",
    "LabStartError",
    "SlotError",
    "SlotInfo",
    "StockFileExistsError",
    "SystemPcscd",
    "default_labdir",
    "explain_missing_service",
    "find_system_pcscd",
    "is_lab_socket",
    "lab_card_profiles",
    "pcsc_environment",
    "stock_csv",
    "write_lab_stock_file",
    "write_stock_file",
]


def __getattr__(name: str) -> Any:
    # STOCK_COLUMNS comes from provisioning, imported only when asked for.
    if name == "STOCK_COLUMNS":
        from simtool.lab import stock

        return stock.STOCK_COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
