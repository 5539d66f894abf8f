"""A virtual UICC: a model of a USIM card that answers APDUs like a T=0 card.

:class:`VirtualUicc` keeps a file system (TS 102 221 / TS 31.102 / TS 51.011),
the PIN state machine (TS 102 221 §9, §11.1.9-13), Milenage authentication
(TS 31.102 §7.1.2) and the T=0 transport habits a station must cope with:

* a command that carries data and produces data (SELECT with FCP,
  AUTHENTICATE) answers ``61xx``; the data comes with GET RESPONSE;
* a command without Le that produces data (e.g. ``80 F2 00 00``) also answers
  ``61xx``; a wrong Le answers ``6Cxx`` with the exact length, and the re-sent
  command then answers;
* CLA ``A0`` speaks the classic SIM protocol (GSM 11.11): SELECT answers
  ``9Fxx`` and GET RESPONSE (A0 C0) returns the GSM-format response.

``process()`` never raises: malformed input gets a status word, and an
internal fault answers ``6F00`` (counted in ``internal_errors`` and logged by
header only, since command data may be a PIN).

With a ``state_path`` the card's non-volatile memory (PIN/PUK values and
counters, enabled flags, files written by UPDATE, the authentication SQN) is
saved there after every change, atomically and with mode 0600, and loaded on
construction: a blocked PIN stays blocked across power cycles and processes.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from apdu import status
from apdu.command import CommandApdu
from apdu.errors import ParseError
from apdu.fcp import (
    CodeStatus,
    PinStatusEntry,
    PinStatusTemplate,
    SecurityAttributes,
    build_fcp,
    build_gsm_response,
)
from apdu.files import CURRENT_ADF, EF_ARR_MF, EF_ARR_USIM, EF_IMSI, MF
from apdu.milenage import AUTN_LENGTH, RAND_LENGTH, SQN_LENGTH, Milenage, c3
from apdu.tlv import encode_ber_tlv
from apdu.virtual.filesystem import (
    DF_ARR_RECORD,
    Condition,
    Df,
    Ef,
    FileSystem,
    arr_record_of,
    build_file_system,
)
from apdu.virtual.pins import PUK_RETRIES, SecretCode
from apdu.virtual.profile import CardProfile, write_private_file

log = logging.getLogger(__name__)

KEY_PIN1 = 0x01
KEY_PIN2 = 0x81
KEY_ADM1 = 0x0A
ADM_RETRIES = 10

# Status words by the names this model uses; the values live in apdu.status.
SW_OK = status.SW_OK
SW_MEMORY_PROBLEM = status.SW_MEMORY_PROBLEM
SW_WRONG_LENGTH = status.SW_WRONG_LENGTH
SW_CHANNEL_NOT_SUPPORTED = status.SW_CHANNEL_NOT_SUPPORTED
SW_SM_NOT_SUPPORTED = status.SW_SM_NOT_SUPPORTED
SW_CHAINING_NOT_SUPPORTED = status.SW_CHAINING_NOT_SUPPORTED
SW_INCOMPATIBLE_STRUCTURE = status.SW_INCOMPATIBLE_FILE_STRUCTURE
SW_SECURITY = status.SW_SECURITY_STATUS
SW_CONDITIONS = status.SW_CONDITIONS_OF_USE
SW_NO_CURRENT_EF = status.SW_NO_CURRENT_EF
SW_BAD_DATA = status.SW_WRONG_DATA
SW_NOT_FOUND = status.SW_FILE_NOT_FOUND
SW_RECORD_NOT_FOUND = status.SW_RECORD_NOT_FOUND
SW_BAD_P1P2 = status.SW_WRONG_P1P2
SW_KEY_NOT_FOUND = status.SW_REFERENCE_NOT_FOUND
SW_WRONG_P1P2 = status.SW_WRONG_P1P2_OFFSET
SW_BAD_INS = status.SW_INS_NOT_SUPPORTED
SW_BAD_CLA = status.SW_CLA_NOT_SUPPORTED
SW_TECHNICAL = status.SW_TECHNICAL_PROBLEM
SW_AUTH_MAC_FAILURE = status.SW_AUTH_MAC_FAILURE

# GSM 11.11 §9.4 status words.
GSM_SW_NO_EF = status.GSM_SW_NO_EF
GSM_SW_OUT_OF_RANGE = status.GSM_SW_OUT_OF_RANGE
GSM_SW_NOT_FOUND = status.GSM_SW_FILE_NOT_FOUND
GSM_SW_INCONSISTENT = status.GSM_SW_INCONSISTENT
GSM_SW_ACCESS = status.GSM_SW_ACCESS_CONDITION
GSM_SW_CHV_CONTRADICTION = status.GSM_SW_CHV_CONTRADICTION
GSM_SW_BLOCKED = status.GSM_SW_CHV_BLOCKED

_STATE_FORMAT = 1
_MAX_SHORT = 256
# TS 102 221 §11.1.1.4.6.1 UICC characteristics: b1 clock stop allowed (no
# preferred level), b5-b7 supply voltage classes A, B and C, as TA3 of the ATR says.
_UICC_CHARACTERISTICS = bytes.fromhex("800171")
_DB_SUCCESS = 0xDB
_DC_SYNC_FAILURE = 0xDC
_GSM_DF_CHARACTERISTICS = 0x13
# TS 102 221 Table 10.5: which instructions go with CLA 0X and which with 8X.
_INTERINDUSTRY_INS = frozenset(
    (
        0xA4,
        0xB0,
        0xD6,
        0xB2,
        0xDC,
        0xA2,
        0x20,
        0x24,
        0x26,
        0x28,
        0x2C,
        0x88,
        0xC0,
        0x70,
        0x04,
        0x44,
        0x84,
        0x73,
        0x75,
    )
)
_PROPRIETARY_INS = frozenset((0x10, 0x12, 0x14, 0xC2, 0xAA, 0x32, 0x76, 0x78, 0xCB, 0xDB))


def _sw(sw: int, data: bytes = b"") -> bytes:
    return data + sw.to_bytes(2, "big")


def _lv(value: bytes) -> bytes:
    return bytes((len(value),)) + value


class VirtualUicc:
    """A USIM card model for the lab, the modem simulator and unit tests.

    Thread-safe: one lock serialises commands and power events.
    """

    protocol = 0

    def __init__(self, profile: CardProfile, state_path: Path | None = None) -> None:
        self.profile = profile
        self.apdu_count = 0
        self.internal_errors = 0
        self._state_path = Path(state_path) if state_path is not None else None
        self._lock = threading.RLock()
        self._fs: FileSystem = build_file_system(profile)
        self._pins: dict[int, SecretCode] = {
            KEY_PIN1: SecretCode(
                KEY_PIN1,
                profile.pin1,
                profile.pin1_retries,
                profile.pin1_enabled,
                profile.puk1,
                profile.puk1_retries,
                can_disable=True,
            ),
            KEY_PIN2: SecretCode(
                KEY_PIN2,
                profile.pin2,
                profile.pin2_retries,
                True,
                profile.puk2,
                profile.puk2_retries,
            ),
            KEY_ADM1: SecretCode(
                KEY_ADM1,
                profile.adm1,
                ADM_RETRIES,
                True,
                None,
                0,
                max_retries=ADM_RETRIES,
                max_puk_retries=0,
            ),
        }
        # auth-fault (a lab fault profile): the chip's key no longer matches
        # the vendor's record, which keeps the true Ki.
        self._milenage = Milenage(
            _damaged_key(profile.ki) if profile.auth_fault else profile.ki, profile.opc
        )
        self._sqn_ms = bytes(SQN_LENGTH)
        self._written: set[str] = set()
        if self._state_path is not None and self._state_path.exists():
            self._load_state(self._state_path)
        if profile.fs_corrupt:
            _garble_imsi(self._fs)
        self._faults = profile.file_faults()
        self._path: list[Df] = [self._fs.mf]
        self._ef: Ef | None = None
        self._record = 0
        self._app: Df | None = None
        self._pending: bytes | None = None
        self.powered = False
        self._reset_volatile()

    def __repr__(self) -> str:
        return f"VirtualUicc(profile={self.profile.name!r}, iccid={self.profile.iccid})"

    # --- power ----------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        """The answer to reset (T=0 offered, T=15 global bytes, TCK)."""
        return self.profile.atr

    def power_on(self) -> bytes:
        """Cold start: MF selected, no PIN verified, no application active; the ATR."""
        with self._lock:
            self._reset_volatile()
            self.powered = True
            return self.atr

    def power_off(self) -> None:
        """Remove power: everything volatile is lost."""
        with self._lock:
            self._reset_volatile()
            self.powered = False

    def reset(self) -> bytes:
        """Warm reset: same effect as a cold start here; the ATR."""
        return self.power_on()

    def _reset_volatile(self) -> None:
        self._path = [self._fs.mf]
        self._ef = None
        self._record = 0
        self._app = None
        self._pending = None
        for pin in self._pins.values():
            pin.verified = False

    @property
    def mute(self) -> bool:
        """True for a card that gives its ATR, then never answers a command (vpcd)."""
        return self.profile.mute

    # --- inspection for tests and the lab -------------------------------------------

    def pin_state(self, key_reference: int) -> tuple[int, bool, int]:
        """(PIN retries, enabled, PUK retries) of a key reference, without any APDU."""
        with self._lock:
            pin = self._pins[key_reference]
            return pin.retries, pin.enabled, pin.puk_retries

    # --- APDU entry point -----------------------------------------------------------

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU with data + SW1 SW2. Never raises."""
        with self._lock:
            self.apdu_count += 1
            try:
                return self._process(bytes(command))
            except OSError:
                log.exception(
                    "virtual card could not save its state (command header %s)",
                    bytes(command[:4]).hex(),
                )
                self.internal_errors += 1
                return _sw(SW_MEMORY_PROBLEM)
            except Exception:
                log.exception("virtual card fault on command header %s", bytes(command[:4]).hex())
                self.internal_errors += 1
                return _sw(SW_TECHNICAL)

    def _process(self, raw: bytes) -> bytes:
        # Response data waits for the very next command only (TS 102 221 §7.3.1.1.4).
        pending, self._pending = self._pending, None
        try:
            apdu = CommandApdu.from_bytes(raw)
        except ParseError:
            return _sw(SW_WRONG_LENGTH)
        if apdu.extended:
            # T=0 has no extended length.
            return _sw(SW_WRONG_LENGTH)
        cla = apdu.cla
        if cla == 0xA0:
            if not (self.profile.classic_only or self.profile.classic_view):
                return _sw(SW_BAD_CLA)
            return self._gsm(apdu, pending)
        if self.profile.classic_only:
            return _sw(SW_BAD_CLA)
        if 0x40 <= cla <= 0x7F or 0xC0 <= cla <= 0xEF:
            # Further interindustry coding: logical channels 4-19, which this card lacks.
            return _sw(SW_CHANNEL_NOT_SUPPORTED)
        if cla & 0x70:
            return _sw(SW_CHAINING_NOT_SUPPORTED if cla & 0xF0 in (0x10, 0x90) else SW_BAD_CLA)
        if cla & 0x0C:
            return _sw(SW_SM_NOT_SUPPORTED)
        if cla & 0x03:
            return _sw(SW_CHANNEL_NOT_SUPPORTED)
        return self._uicc(apdu, proprietary=bool(cla & 0x80), pending=pending)

    # --- UICC (CLA 0X / 8X) --------------------------------------------------------

    def _uicc(self, apdu: CommandApdu, *, proprietary: bool, pending: bytes | None) -> bytes:
        ins = apdu.ins
        if ins == 0xF2:
            # STATUS is 80 F2 in TS 102 221; 00 F2 is accepted too, as many cards do.
            return self._status(apdu)
        if proprietary:
            if ins == 0x10:
                return _sw(SW_OK)  # TERMINAL PROFILE: noted; no proactive session follows
            return _sw(SW_BAD_CLA if ins in _INTERINDUSTRY_INS else SW_BAD_INS)
        if ins in _PROPRIETARY_INS:
            return _sw(SW_BAD_CLA)
        handlers = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0xD6: self._update_binary,
            0xB2: self._read_record,
            0xDC: self._update_record,
            0x88: self._authenticate,
        }
        if ins == 0xC0:
            return self._get_response(apdu, pending)
        if ins in (0x20, 0x24, 0x26, 0x28, 0x2C):
            return self._pin_command(apdu)
        handler = handlers.get(ins)
        if handler is None:
            return _sw(SW_BAD_INS)
        return handler(apdu)

    def _respond(self, apdu: CommandApdu, data: bytes) -> bytes:
        """Deliver response data the way a T=0 card does (61xx / 6Cxx / direct)."""
        if apdu.data or apdu.le is None:
            self._pending = data
            return _sw(status.SW1_MORE_DATA << 8 | (len(data) & 0xFF))
        if apdu.le != len(data) and not (apdu.le == _MAX_SHORT and len(data) > _MAX_SHORT):
            return _sw(status.SW1_WRONG_LE << 8 | (len(data) & 0xFF))
        return _sw(SW_OK, data[:_MAX_SHORT])

    def _get_response(self, apdu: CommandApdu, pending: bytes | None) -> bytes:
        if apdu.p1 or apdu.p2:
            return _sw(SW_WRONG_P1P2)
        if apdu.data:
            return _sw(SW_WRONG_LENGTH)
        if pending is None:
            return _sw(SW_CONDITIONS)
        le = len(pending) if apdu.le is None else apdu.le
        if le > len(pending):
            self._pending = pending
            return _sw(status.SW1_WRONG_LE << 8 | (len(pending) & 0xFF))
        if le < len(pending):
            self._pending = pending[le:]
            return _sw(status.SW1_MORE_DATA << 8 | (len(self._pending) & 0xFF), pending[:le])
        return _sw(SW_OK, pending)

    # --- file selection ---------------------------------------------------------------

    def _resolve_fid(self, fid: int, *, classic: bool) -> tuple[list[Df], Ef | None] | None:
        """Where SELECT by file id lands (TS 102 221 §8.4.1, GSM 11.11 §6.5)."""
        path = self._path
        current = path[-1]
        mf = self._fs.mf
        if fid == MF.fid:
            return [mf], None
        if fid == CURRENT_ADF and not classic:
            return ([mf, self._app], None) if self._app is not None else None
        if current.fid == fid:
            return list(path), None
        child = current.child(fid)
        if isinstance(child, Df):
            return [*path, child], None
        if isinstance(child, Ef):
            return list(path), child
        if len(path) > 1:
            parent = path[-2]
            if parent.fid == fid:
                return path[:-1], None
            sibling = parent.child(fid)
            if isinstance(sibling, Df):
                return [*path[:-1], sibling], None
        return None

    def _resolve_path(self, fids: list[int], start: list[Df]) -> tuple[list[Df], Ef | None] | None:
        path = list(start)
        for index, fid in enumerate(fids):
            last = index == len(fids) - 1
            if fid == CURRENT_ADF:
                if self._app is None or path != [self._fs.mf]:
                    return None
                path.append(self._app)
                continue
            child = path[-1].child(fid)
            if isinstance(child, Df):
                path.append(child)
            elif isinstance(child, Ef) and last:
                return path, child
            else:
                return None
        return path, None

    def _select(self, apdu: CommandApdu) -> bytes:
        p1, p2 = apdu.p1, apdu.p2
        answer = p2 & 0xFC
        if answer not in (0x00, 0x04, 0x0C) or (p1 != 0x04 and p2 & 0x03):
            return _sw(SW_BAD_P1P2)
        data = apdu.data
        target: tuple[list[Df], Ef | None] | None
        if p1 == 0x00:
            if not data:
                target = [self._fs.mf], None
            elif len(data) == 2:
                target = self._resolve_fid(int.from_bytes(data, "big"), classic=False)
            else:
                return _sw(SW_WRONG_LENGTH)
        elif p1 in (0x01, 0x02):
            if len(data) != 2:
                return _sw(SW_WRONG_LENGTH)
            child = self._path[-1].child(int.from_bytes(data, "big"))
            if p1 == 0x01 and isinstance(child, Df):
                target = [*self._path, child], None
            elif p1 == 0x02 and isinstance(child, Ef):
                target = list(self._path), child
            else:
                target = None
        elif p1 == 0x03:
            if data:
                return _sw(SW_WRONG_LENGTH)
            target = (self._path[:-1], None) if len(self._path) > 1 else None
        elif p1 == 0x04:
            if not 1 <= len(data) <= 16:
                return _sw(SW_WRONG_LENGTH)
            aid = self._fs.usim.aid or b""
            # Only one application: "next occurrence" (P2 b2=1) finds nothing.
            if p2 & 0x02 or not aid.startswith(data):
                target = None
            else:
                target = [self._fs.mf, self._fs.usim], None
        elif p1 in (0x08, 0x09):
            if len(data) % 2 or (p1 == 0x09 and not data):
                return _sw(SW_WRONG_LENGTH)
            fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
            if p1 == 0x08:
                if fids and fids[0] == MF.fid:
                    fids = fids[1:]
                target = self._resolve_path(fids, [self._fs.mf])
            else:
                target = self._resolve_path(fids, self._path)
        else:
            return _sw(SW_BAD_P1P2)
        if target is None:
            return _sw(SW_NOT_FOUND)
        fault = self._fault(target[0][-1]) if target[1] is None else None
        if fault is not None:
            return _sw(fault)
        self._path, self._ef = target
        self._record = 0
        if p1 == 0x04:
            self._app = self._fs.usim
        if answer == 0x0C:
            return _sw(SW_OK)
        node: Df | Ef = self._ef if self._ef is not None else self._path[-1]
        return self._respond(apdu, self._fcp(node))

    def _pin_status(self, df: Df) -> PinStatusTemplate:
        pin1 = PinStatusEntry(KEY_PIN1, self._pins[KEY_PIN1].enabled, 0x08)
        adm = PinStatusEntry(KEY_ADM1, True)
        if df.aid is not None:
            return PinStatusTemplate((pin1, PinStatusEntry(KEY_PIN2, True), adm))
        return PinStatusTemplate((pin1, adm))

    def _fcp(self, node: Df | Ef) -> bytes:
        if isinstance(node, Df):
            arr = EF_ARR_USIM.fid if node.aid is not None else EF_ARR_MF.fid
            characteristics = node is self._fs.mf or node.aid is not None
            return build_fcp(
                file_type="df",
                file_id=node.fid,
                df_name=node.aid,
                proprietary=_UICC_CHARACTERISTICS if characteristics else None,
                security_attributes=SecurityAttributes.referenced(arr, DF_ARR_RECORD),
                pin_status=self._pin_status(node),
            )
        data = node.data
        return build_fcp(
            file_type="working_ef",
            structure=data.structure,
            record_length=data.record_length,
            number_of_records=data.number_of_records or None,
            file_id=node.fid,
            security_attributes=SecurityAttributes.referenced(
                node.arr_fid, arr_record_of(node.access)
            ),
            file_size=data.size,
            short_file_id=node.sfi,
        )

    # --- access control ---------------------------------------------------------------

    def _allowed(self, condition: Condition) -> bool:
        if condition is Condition.ALWAYS:
            return True
        if condition is Condition.NEVER:
            return False
        key = condition.key_reference
        assert key is not None
        pin = self._pins[key]
        if key == KEY_ADM1:
            return pin.verified
        return pin.satisfied

    def _ef_by_sfi(self, sfi: int) -> Ef | None:
        ef = self._path[-1].by_sfi(sfi)
        if ef is not None:
            self._ef = ef
            self._record = 0
        return ef

    # --- binary files -------------------------------------------------------------------

    def _fault(self, node: Ef | Df | None, by_sfi: bool = False) -> int | None:
        """The status word the profile's ``file_sw`` makes ``node`` answer, if any."""
        if not self._faults:
            return None
        if by_sfi and "SFI" in self._faults:
            return self._faults["SFI"]
        if node is None:
            return None
        if isinstance(node, Ef):
            return self._faults.get(node.data.key, self._faults.get(node.name))
        return self._faults.get(node.name)

    def _binary_target(self, apdu: CommandApdu) -> tuple[Ef, int] | int:
        """The EF and offset a READ/UPDATE BINARY addresses, or a status word."""
        fault = self._fault(None if apdu.p1 & 0x80 else self._ef, bool(apdu.p1 & 0x80))
        if fault is not None:
            return fault
        if apdu.p1 & 0x80:
            if apdu.p1 & 0x60 or not apdu.p1 & 0x1F:
                return SW_BAD_P1P2
            ef = self._ef_by_sfi(apdu.p1 & 0x1F)
            fault = self._fault(ef)
            if fault is not None:
                return fault
            if ef is None:
                return SW_NOT_FOUND
            offset = apdu.p2
        else:
            ef = self._ef
            offset = (apdu.p1 << 8) | apdu.p2
        if ef is None:
            return SW_NO_CURRENT_EF
        if ef.data.record_length is not None:
            return SW_INCOMPATIBLE_STRUCTURE
        return ef, offset

    def _read_binary(self, apdu: CommandApdu) -> bytes:
        if apdu.data:
            return _sw(SW_WRONG_LENGTH)
        target = self._binary_target(apdu)
        if isinstance(target, int):
            return _sw(target)
        ef, offset = target
        if not self._allowed(ef.access.read):
            return _sw(SW_SECURITY)
        content = ef.data.content
        if offset >= len(content):
            return _sw(SW_WRONG_P1P2)
        available = len(content) - offset
        if apdu.le is None:
            return self._respond(apdu, bytes(content[offset : offset + _MAX_SHORT]))
        if apdu.le > available:
            return _sw(status.SW1_WRONG_LE << 8 | (min(available, _MAX_SHORT) & 0xFF))
        return _sw(SW_OK, bytes(content[offset : offset + apdu.le]))

    def _update_binary(self, apdu: CommandApdu) -> bytes:
        if not apdu.data or apdu.le is not None:
            return _sw(SW_WRONG_LENGTH)
        target = self._binary_target(apdu)
        if isinstance(target, int):
            return _sw(target)
        ef, offset = target
        if not self._allowed(ef.access.update):
            return _sw(SW_SECURITY)
        content = ef.data.content
        if offset >= len(content):
            return _sw(SW_WRONG_P1P2)
        if offset + len(apdu.data) > len(content):
            return _sw(SW_WRONG_LENGTH)
        content[offset : offset + len(apdu.data)] = apdu.data
        self._file_written(ef)
        return _sw(SW_OK)

    # --- record files -------------------------------------------------------------------

    def _record_target(self, apdu: CommandApdu) -> tuple[Ef, int] | int:
        """The EF and record number a READ/UPDATE RECORD addresses, or a status word."""
        sfi, mode = apdu.p2 >> 3, apdu.p2 & 0x07
        if sfi == 0x1F or mode not in (0x02, 0x03, 0x04):
            return SW_BAD_P1P2
        ef = self._ef
        if sfi:
            ef = self._ef_by_sfi(sfi)
            if ef is None:
                return SW_NOT_FOUND
        fault = self._fault(ef, bool(sfi))
        if fault is not None:
            return fault
        if ef is None:
            return SW_NO_CURRENT_EF
        if ef.data.record_length is None:
            return SW_INCOMPATIBLE_STRUCTURE
        count = ef.data.number_of_records
        if mode == 0x04:
            number = apdu.p1 or self._record
        elif apdu.p1:
            return SW_BAD_P1P2
        elif mode == 0x02:
            number = self._record + 1
        else:
            number = self._record - 1 if self._record else count
        if not 1 <= number <= count:
            return SW_RECORD_NOT_FOUND
        return ef, number

    def _read_record(self, apdu: CommandApdu) -> bytes:
        if apdu.data:
            return _sw(SW_WRONG_LENGTH)
        target = self._record_target(apdu)
        if isinstance(target, int):
            return _sw(target)
        ef, number = target
        if not self._allowed(ef.access.read):
            return _sw(SW_SECURITY)
        if apdu.p2 & 0x07 != 0x04:
            self._record = number
        return self._respond(apdu, ef.data.record(number))

    def _update_record(self, apdu: CommandApdu) -> bytes:
        if not apdu.data or apdu.le is not None:
            return _sw(SW_WRONG_LENGTH)
        target = self._record_target(apdu)
        if isinstance(target, int):
            return _sw(target)
        ef, number = target
        if not self._allowed(ef.access.update):
            return _sw(SW_SECURITY)
        if len(apdu.data) != ef.data.record_length:
            return _sw(SW_WRONG_LENGTH)
        if apdu.p2 & 0x07 != 0x04:
            self._record = number
        ef.data.write_record(number, apdu.data)
        self._file_written(ef)
        return _sw(SW_OK)

    # --- STATUS -------------------------------------------------------------------------

    def _status(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 > 0x02 or apdu.p2 not in (0x00, 0x01, 0x0C):
            return _sw(SW_BAD_P1P2)
        if apdu.data:
            return _sw(SW_WRONG_LENGTH)
        if apdu.p2 == 0x0C:
            return _sw(SW_OK)
        if apdu.p2 == 0x01:
            if self._app is None or self._app.aid is None:
                return _sw(SW_NOT_FOUND)
            return self._respond(apdu, encode_ber_tlv(0x84, self._app.aid))
        return self._respond(apdu, self._fcp(self._path[-1]))

    # --- PINs -------------------------------------------------------------------------

    def _pin_command(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            return _sw(SW_WRONG_P1P2)
        # In T=0 a command without data still sends P3, as 00: "00 20 00 01 00" is the
        # retry-counter query (the form AT+CSIM users send), not a request for 256 bytes.
        if apdu.le is not None and (apdu.data or apdu.le != _MAX_SHORT):
            return _sw(SW_WRONG_LENGTH)
        pin = self._pins.get(apdu.p2)
        if pin is None:
            return _sw(SW_KEY_NOT_FOUND)
        return _sw(self._run_pin_operation(apdu.ins, pin, apdu.data or None))

    def _run_pin_operation(self, ins: int, pin: SecretCode, data: bytes | None) -> int:
        """Run VERIFY/CHANGE/DISABLE/ENABLE/UNBLOCK (by INS); persist what changed."""
        before = pin.persistent_state()
        if ins == 0x20:
            sw = pin.verify(data)
        elif ins == 0x2C:
            sw = pin.unblock(data)
        elif data is None:
            sw = SW_WRONG_LENGTH
        elif ins == 0x24:
            sw = pin.change(data)
        elif ins == 0x26:
            sw = pin.disable(data)
        else:
            sw = pin.enable(data)
        if pin.persistent_state() != before:
            self._save_state()
        return sw

    # --- AUTHENTICATE ----------------------------------------------------------------

    def _authenticate(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            return _sw(SW_WRONG_P1P2)
        if apdu.p2 not in (0x80, 0x81):
            return _sw(SW_BAD_P1P2)
        if self._app is None:
            return _sw(SW_CONDITIONS)
        if not self._allowed(Condition.PIN1):
            return _sw(SW_SECURITY)
        data = apdu.data
        if apdu.p2 == 0x80:
            if len(data) != 1 + RAND_LENGTH or data[0] != RAND_LENGTH:
                return _sw(SW_WRONG_LENGTH)
            sres, kc = self._milenage.gsm(data[1:])
            return self._respond(apdu, _lv(sres) + _lv(kc))
        if (
            len(data) != 2 + RAND_LENGTH + AUTN_LENGTH
            or data[0] != RAND_LENGTH
            or data[1 + RAND_LENGTH] != AUTN_LENGTH
        ):
            return _sw(SW_WRONG_LENGTH)
        rand, autn = data[1 : 1 + RAND_LENGTH], data[2 + RAND_LENGTH :]
        res, ck, ik, ak = self._milenage.f2345(rand)
        sqn = bytes(a ^ b for a, b in zip(autn[:SQN_LENGTH], ak, strict=True))
        amf, mac = autn[SQN_LENGTH : SQN_LENGTH + 2], autn[SQN_LENGTH + 2 :]
        if self._milenage.f1(rand, sqn, amf) != mac:
            return _sw(SW_AUTH_MAC_FAILURE)
        if int.from_bytes(sqn, "big") <= int.from_bytes(self._sqn_ms, "big"):
            # Not fresh: ask the network to resynchronise (TS 33.102 §6.3.3, §6.3.5).
            auts = self._milenage.generate_auts(rand, self._sqn_ms)
            return self._respond(apdu, bytes((_DC_SYNC_FAILURE,)) + _lv(auts))
        self._sqn_ms = sqn
        self._save_state()
        answer = bytes((_DB_SUCCESS,)) + _lv(res) + _lv(ck) + _lv(ik) + _lv(c3(ck, ik))
        return self._respond(apdu, answer)

    # --- classic SIM (CLA A0, GSM 11.11) ------------------------------------------------

    def _gsm(self, apdu: CommandApdu, pending: bytes | None) -> bytes:
        ins = apdu.ins
        if ins == 0xC0:
            return self._gsm_get_response(apdu, pending)
        if ins == 0xA4:
            return self._gsm_select(apdu)
        if ins == 0xF2:
            if apdu.p1 or apdu.p2:
                return _sw(SW_WRONG_P1P2)
            return self._gsm_deliver(apdu, self._gsm_response(self._path[-1]))
        if ins in (0xB0, 0xD6):
            return self._gsm_binary(apdu)
        if ins in (0xB2, 0xDC):
            return self._gsm_record(apdu)
        if ins in (0x20, 0x24, 0x26, 0x28, 0x2C):
            return self._gsm_chv(apdu)
        if ins == 0x88:
            return self._gsm_run_algorithm(apdu)
        if ins in (0xFA, 0x10):
            return _sw(SW_OK)  # SLEEP, TERMINAL PROFILE
        return _sw(SW_BAD_INS)

    def _gsm_deliver(self, apdu: CommandApdu, data: bytes) -> bytes:
        """Return the first P3 bytes of ``data``; a longer P3 gets 67 + the right length."""
        le = apdu.le if apdu.le is not None else len(data)
        if apdu.data or le > len(data):
            return _sw(status.SW1_GSM_WRONG_LENGTH << 8 | (len(data) & 0xFF))
        return _sw(SW_OK, data[:le])

    def _gsm_get_response(self, apdu: CommandApdu, pending: bytes | None) -> bytes:
        if apdu.p1 or apdu.p2:
            return _sw(SW_WRONG_P1P2)
        if pending is None:
            return _sw(SW_TECHNICAL)
        if apdu.le is not None and apdu.le > len(pending):
            # Keep the data: the terminal will ask again with the length given here.
            self._pending = pending
        return self._gsm_deliver(apdu, pending)

    def _gsm_select(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 or apdu.p2:
            return _sw(SW_WRONG_P1P2)
        if len(apdu.data) != 2:
            return _sw(SW_WRONG_LENGTH)
        target = self._resolve_fid(int.from_bytes(apdu.data, "big"), classic=True)
        if target is None:
            return _sw(GSM_SW_NOT_FOUND)
        self._path, self._ef = target
        self._record = 0
        node: Df | Ef = self._ef if self._ef is not None else self._path[-1]
        self._pending = self._gsm_response(node)
        return _sw(status.SW1_GSM_MORE_DATA << 8 | len(self._pending))

    def _gsm_response(self, node: Df | Ef) -> bytes:
        if isinstance(node, Ef):
            data, access = node.data, node.access
            conditions = bytes(
                ((access.read.gsm_nibble << 4) | access.update.gsm_nibble, 0xFF, 0x44)
            )
            return build_gsm_response(
                file_id=node.fid,
                file_type="working_ef",
                structure=data.structure,
                file_size=data.size,
                record_length=data.record_length,
                access_conditions=conditions,
            )
        pin1, pin2 = self._pins[KEY_PIN1], self._pins[KEY_PIN2]
        return build_gsm_response(
            file_id=node.fid if node.fid is not None else CURRENT_ADF,
            file_type="df",
            file_characteristics=_GSM_DF_CHARACTERISTICS,
            chv1_enabled=pin1.enabled,
            child_dfs=sum(1 for d in node.dfs if d.fid is not None),
            child_efs=len(node.efs),
            chv1=CodeStatus(True, pin1.retries),
            unblock_chv1=CodeStatus(True, pin1.puk_retries),
            chv2=CodeStatus(True, pin2.retries),
            unblock_chv2=CodeStatus(True, pin2.puk_retries),
        )

    def _gsm_binary(self, apdu: CommandApdu) -> bytes:
        ef = self._ef
        if ef is None:
            return _sw(GSM_SW_NO_EF)
        if ef.data.record_length is not None:
            return _sw(GSM_SW_INCONSISTENT)
        offset = (apdu.p1 << 8) | apdu.p2
        content = ef.data.content
        update = apdu.ins == 0xD6
        if not self._allowed(ef.access.update if update else ef.access.read):
            return _sw(GSM_SW_ACCESS)
        if offset >= len(content):
            return _sw(GSM_SW_OUT_OF_RANGE)
        available = len(content) - offset
        if update:
            if not apdu.data or apdu.le is not None or len(apdu.data) > available:
                return _sw(status.SW1_GSM_WRONG_LENGTH << 8 | (available & 0xFF))
            content[offset : offset + len(apdu.data)] = apdu.data
            self._file_written(ef)
            return _sw(SW_OK)
        if apdu.data or apdu.le is None or apdu.le > available:
            return _sw(status.SW1_GSM_WRONG_LENGTH << 8 | (min(available, 0xFF)))
        return _sw(SW_OK, bytes(content[offset : offset + apdu.le]))

    def _gsm_record(self, apdu: CommandApdu) -> bytes:
        ef = self._ef
        if ef is None:
            return _sw(GSM_SW_NO_EF)
        if ef.data.record_length is None:
            return _sw(GSM_SW_INCONSISTENT)
        update = apdu.ins == 0xDC
        if not self._allowed(ef.access.update if update else ef.access.read):
            return _sw(GSM_SW_ACCESS)
        length = ef.data.record_length
        given = len(apdu.data) if update else apdu.le
        if given != length or (apdu.data and not update) or (update and apdu.le is not None):
            return _sw(status.SW1_GSM_WRONG_LENGTH << 8 | (length & 0xFF))
        target = self._record_target(apdu)
        if target == SW_BAD_P1P2:
            return _sw(SW_WRONG_P1P2)
        if isinstance(target, int):
            return _sw(GSM_SW_OUT_OF_RANGE)
        _, number = target
        if apdu.p2 != 0x04:
            self._record = number
        if update:
            ef.data.write_record(number, apdu.data)
            self._file_written(ef)
            return _sw(SW_OK)
        return _sw(SW_OK, ef.data.record(number))

    def _gsm_chv(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            return _sw(SW_WRONG_P1P2)
        # UNBLOCK CHV names CHV1 as 00 (GSM 11.11 §9.2.14); the others as 01.
        chv1 = 0x00 if apdu.ins == 0x2C else 0x01
        keys = {chv1: KEY_PIN1, 0x02: KEY_PIN2}
        if apdu.ins in (0x26, 0x28):
            keys = {0x01: KEY_PIN1}
        key = keys.get(apdu.p2)
        if key is None:
            return _sw(SW_WRONG_P1P2)
        expected = 16 if apdu.ins in (0x24, 0x2C) else 8
        if len(apdu.data) != expected or apdu.le is not None:
            return _sw(SW_WRONG_LENGTH)
        sw = self._run_pin_operation(apdu.ins, self._pins[key], apdu.data)
        return _sw(_gsm_status_word(sw))

    def _gsm_run_algorithm(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 or apdu.p2:
            return _sw(SW_WRONG_P1P2)
        if len(apdu.data) != RAND_LENGTH or apdu.le is not None:
            return _sw(SW_WRONG_LENGTH)
        if self._path[-1] is not self._fs.gsm:
            return _sw(GSM_SW_NO_EF)
        if not self._allowed(Condition.PIN1):
            return _sw(GSM_SW_ACCESS)
        sres, kc = self._milenage.gsm(apdu.data)
        self._pending = sres + kc
        return _sw(status.SW1_GSM_MORE_DATA << 8 | len(self._pending))

    # --- persistence ----------------------------------------------------------------

    def _file_written(self, ef: Ef) -> None:
        self._written.add(ef.data.key)
        self._save_state()

    def _save_state(self) -> None:
        if self._state_path is None:
            return
        state = {
            "format": _STATE_FORMAT,
            "iccid": self.profile.iccid,
            "pins": {f"{key:02X}": pin.persistent_state() for key, pin in self._pins.items()},
            "sqn_ms": self._sqn_ms.hex().upper(),
            "files": {
                key: self._fs.data[key].content.hex().upper() for key in sorted(self._written)
            },
        }
        text = json.dumps(state, indent=1, sort_keys=True) + "\n"
        self._state_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private_file(self._state_path, text.encode("ascii"))

    def _load_state(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ParseError(f"card state {path} is unreadable: {exc}") from None
        if not isinstance(state, dict):
            raise ParseError(f"card state {path} is not a JSON object")
        try:
            self._apply_state(state)
        except ParseError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParseError(f"card state {path} is malformed: {exc!r}") from None

    def _apply_state(self, state: dict[str, object]) -> None:
        if state.get("format") != _STATE_FORMAT:
            raise ParseError(f"card state format {state.get('format')!r} is not supported")
        if state.get("iccid") != self.profile.iccid:
            raise ParseError(
                f"card state belongs to ICCID {state.get('iccid')}, not {self.profile.iccid}"
            )
        pins = state["pins"]
        if not isinstance(pins, dict):
            raise ParseError("card state 'pins' is not an object")
        for key, pin in self._pins.items():
            saved = pins[f"{key:02X}"]
            value, retries, puk_retries = saved["value"], saved["retries"], saved["puk_retries"]
            if not isinstance(value, str) or not 0 <= retries <= pin.max_retries:
                raise ParseError(f"card state for key {key:02X} is out of range")
            if not 0 <= puk_retries <= max(pin.max_puk_retries, PUK_RETRIES):
                raise ParseError(f"card state for key {key:02X} is out of range")
            pin.value, pin.retries = value, int(retries)
            pin.enabled, pin.puk = bool(saved["enabled"]), saved["puk"]
            pin.puk_retries = int(puk_retries)
        sqn = bytes.fromhex(str(state["sqn_ms"]))
        if len(sqn) != SQN_LENGTH:
            raise ParseError("card state SQN is not 6 bytes")
        self._sqn_ms = sqn
        written = state["files"]
        if not isinstance(written, dict):
            raise ParseError("card state 'files' is not an object")
        for key, hex_content in written.items():
            data = self._fs.data.get(key)
            if data is None:
                raise ParseError(f"card state names unknown file {key}")
            content = bytes.fromhex(hex_content)
            if len(content) != data.size:
                raise ParseError(
                    f"card state for {key} has {len(content)} bytes, the file has {data.size}"
                )
            data.content[:] = content
            self._written.add(key)


def _damaged_key(key: bytes) -> bytes:
    """A key one bit away from ``key``: what a card with a corrupted Ki computes with."""
    return key[:-1] + bytes((key[-1] ^ 0x01,))


def _garble_imsi(fs: FileSystem) -> None:
    """Corrupt EF.IMSI the way a failing EEPROM does: a length byte out of range."""
    ef = next(e for e in fs.usim.efs if e.fid == EF_IMSI.fid)
    ef.data.content[0] = 0x0F


def _gsm_status_word(sw: int) -> int:
    """TS 102 221 PIN status words in GSM 11.11 terms (§9.4.5)."""
    if sw == SW_OK:
        return SW_OK
    if sw & status.SW_RETRIES_MASK == status.SW_RETRIES:
        return GSM_SW_ACCESS if sw & 0x0F else GSM_SW_BLOCKED
    if sw == status.SW_AUTH_METHOD_BLOCKED:
        return GSM_SW_BLOCKED
    if sw in (status.SW_REFERENCE_DATA_INVALIDATED, SW_CONDITIONS):
        return GSM_SW_CHV_CONTRADICTION
    if sw == SW_BAD_DATA:
        return SW_WRONG_P1P2
    return sw
