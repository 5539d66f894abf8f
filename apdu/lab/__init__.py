"""The virtual SIM lab: a private pcscd with vpcd readers serving virtual UICCs.

``Lab.up()`` starts one (``simtool lab up`` on the command line), ``Lab.find()``
finds the running one; set ``lab.pcsc_environment()`` in a process's
environment before it first uses pyscard, and it sees the lab's readers.

The lab is card-side equipment, like the virtual card it serves, so it lives
beside it in ``apdu`` and imports nothing above ``apdu``; the command line
(``simtool lab``) is a thin layer over it, and the vendor stock file of its
cards is written by :mod:`provisioning.labstock`.
"""

from apdu.lab.cards import ProfileSource, lab_card_profiles, resolve_profile
from apdu.lab.errors import (
    LabConflictError,
    LabError,
    LabNotRunningError,
    LabPermissionError,
    LabStartError,
    SlotError,
    StockFileExistsError,
)
from apdu.lab.launcher import (
    Lab,
    explain_missing_service,
    is_lab_socket,
    pcsc_environment,
)
from apdu.lab.layout import MAX_SLOTS, PCSC_SOCKET_ENV, READER_PREFIX, default_labdir
from apdu.lab.processes import SystemPcscd, find_system_pcscd
from apdu.lab.state import SlotInfo

__all__ = [
    "MAX_SLOTS",
    "PCSC_SOCKET_ENV",
    "READER_PREFIX",
    "Lab",
    "LabConflictError",
    "LabError",
    "LabNotRunningError",
    "LabPermissionError",
    "LabStartError",
    "ProfileSource",
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
    "resolve_profile",
]
