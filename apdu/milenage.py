"""MILENAGE, the 3GPP example authentication algorithm set (3GPP TS 35.206).

The kernel is AES-128 (from ``cryptography``). :class:`Milenage` computes
f1/f1* (network and resynchronisation MACs), f2 (RES), f3 (CK), f4 (IK), f5
and f5* (anonymity keys) for one subscriber key K and operator variant OPc.
:func:`c2` and :func:`c3` are the conversion functions of TS 33.102
§6.8.1.2 that turn RES/CK/IK into the GSM SRES and Kc.

Nothing here logs, and errors never carry key material.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apdu.errors import ParseError

KEY_LENGTH = 16
RAND_LENGTH = 16
SQN_LENGTH = 6
AMF_LENGTH = 2
AUTN_LENGTH = SQN_LENGTH + AMF_LENGTH + 8
AUTS_LENGTH = SQN_LENGTH + 8

# TS 35.206 §4.1: rotations (in bytes here, the spec gives bits) and constants.
_R1, _R2, _R3, _R4, _R5 = 8, 0, 4, 8, 12
_C1, _C2, _C3, _C4, _C5 = 0, 1, 2, 4, 8


def _check(value: bytes, length: int, name: str) -> bytes:
    value = bytes(value)
    if len(value) != length:
        # The value itself is left out on purpose: it may be a key.
        raise ParseError(f"{name} must be {length} bytes, got {len(value)}")
    return value


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rotate(block: bytes, count: int) -> bytes:
    """Cyclic left rotation by ``count`` bytes."""
    return block[count:] + block[:count]


def _constant(value: int) -> bytes:
    return value.to_bytes(16, "big")


def _aes(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def compute_opc(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP) (TS 35.206 §4.1)."""
    k = _check(k, KEY_LENGTH, "K")
    op = _check(op, KEY_LENGTH, "OP")
    return _xor(_aes(k, op), op)


class Milenage:
    """MILENAGE for one subscriber: K and OPc, both 16 bytes."""

    __slots__ = ("_encryptor", "_opc")

    def __init__(self, k: bytes, opc: bytes) -> None:
        k = _check(k, KEY_LENGTH, "K")
        self._opc = _check(opc, KEY_LENGTH, "OPc")
        # ECB keeps no state between blocks, so one encryptor serves every call.
        self._encryptor = Cipher(algorithms.AES(k), modes.ECB()).encryptor()

    def __repr__(self) -> str:
        return "Milenage(<secret>)"

    def _e(self, block: bytes) -> bytes:
        return self._encryptor.update(block)

    def _temp(self, rand: bytes) -> bytes:
        return self._e(_xor(_check(rand, RAND_LENGTH, "RAND"), self._opc))

    def _out(self, temp: bytes, rotation: int, constant: int) -> bytes:
        block = _xor(_rotate(_xor(temp, self._opc), rotation), _constant(constant))
        return _xor(self._e(block), self._opc)

    def _out1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        sqn = _check(sqn, SQN_LENGTH, "SQN")
        amf = _check(amf, AMF_LENGTH, "AMF")
        temp = self._temp(rand)
        in1 = sqn + amf + sqn + amf
        block = _xor(_xor(temp, _rotate(_xor(in1, self._opc), _R1)), _constant(_C1))
        return _xor(self._e(block), self._opc)

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A, the network authentication code (8 bytes)."""
        return self._out1(rand, sqn, amf)[:8]

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, the resynchronisation authentication code (8 bytes)."""
        return self._out1(rand, sqn, amf)[8:]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """(RES 8 bytes, CK 16, IK 16, AK 6) for ``rand``."""
        temp = self._temp(rand)
        out2 = self._out(temp, _R2, _C2)
        ck = self._out(temp, _R3, _C3)
        ik = self._out(temp, _R4, _C4)
        return out2[8:], ck, ik, out2[:6]

    def f5star(self, rand: bytes) -> bytes:
        """AK used in resynchronisation (6 bytes)."""
        return self._out(self._temp(rand), _R5, _C5)[:6]

    def generate_autn(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """AUTN = (SQN xor AK) || AMF || MAC-A, as a network builds it (TS 33.102 §6.3.2)."""
        sqn = _check(sqn, SQN_LENGTH, "SQN")
        ak = self.f2345(rand)[3]
        return _xor(sqn, ak) + bytes(amf) + self.f1(rand, sqn, amf)

    def generate_auts(self, rand: bytes, sqn_ms: bytes) -> bytes:
        """AUTS = (SQN_MS xor AK*) || MAC-S with the dummy AMF 0000 (TS 33.102 §6.3.3)."""
        sqn_ms = _check(sqn_ms, SQN_LENGTH, "SQN_MS")
        return _xor(sqn_ms, self.f5star(rand)) + self.f1star(rand, sqn_ms, bytes(AMF_LENGTH))

    def verify_auts(self, rand: bytes, auts: bytes) -> bytes | None:
        """SQN_MS recovered from AUTS, or None when its MAC-S does not verify."""
        auts = _check(auts, AUTS_LENGTH, "AUTS")
        sqn_ms = _xor(auts[:SQN_LENGTH], self.f5star(rand))
        if self.f1star(rand, sqn_ms, bytes(AMF_LENGTH)) != auts[SQN_LENGTH:]:
            return None
        return sqn_ms

    def gsm(self, rand: bytes) -> tuple[bytes, bytes]:
        """(SRES, Kc) for a GSM context: c2 of RES and c3 of CK/IK (TS 33.102 §6.8.1.2)."""
        res, ck, ik, _ = self.f2345(rand)
        return c2(res), c3(ck, ik)


def c2(res: bytes) -> bytes:
    """SRES from RES: XOR of the four 32-bit words of RES zero-padded to 128 bits."""
    res = bytes(res)
    if not 4 <= len(res) <= 16:
        raise ParseError(f"RES must be 4 to 16 bytes, got {len(res)}")
    padded = res + bytes(16 - len(res))
    sres = bytes(4)
    for offset in range(0, 16, 4):
        sres = _xor(sres, padded[offset : offset + 4])
    return sres


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc from CK and IK: CK1 xor CK2 xor IK1 xor IK2 (64-bit halves)."""
    ck = _check(ck, KEY_LENGTH, "CK")
    ik = _check(ik, KEY_LENGTH, "IK")
    return _xor(_xor(ck[:8], ck[8:]), _xor(ik[:8], ik[8:]))
