"""Card models for the simulated modem that behave as some real SIMs do."""

from __future__ import annotations

from apdu.virtual import VirtualUicc, lab_profile


class ReportsVerification:
    """A UICC that answers an empty VERIFY with 9000 once the PIN is verified, as many
    real cards do (the counter is then not revealed)."""

    def __init__(self) -> None:
        self.card = VirtualUicc(lab_profile(0))
        self.verified = False

    def power_on(self) -> bytes:
        self.verified = False
        return self.card.power_on()

    def power_off(self) -> None:
        self.verified = False
        self.card.power_off()

    def process(self, command: bytes) -> bytes:
        if command[:4] == bytes.fromhex("00200001") and len(command) <= 5 and self.verified:
            return b"\x90\x00"
        answer = self.card.process(command)
        if command[1:4] == bytes.fromhex("200001") and len(command) > 5:
            self.verified = answer[-2:] == b"\x90\x00"
        return answer
