"""The station's PIN safety policy: one module, used by every path that touches a PIN.

Tools in this field block cards by retrying a wrong PIN from a config file, or
by learning a counter through a wasted attempt. The rules here make that
impossible without an explicit ``force``:

1. Syntax is checked locally before the card sees anything (PIN 4-8 digits,
   PUK 8 digits).
2. The counter is read (empty VERIFY / UNBLOCK, which spends nothing) before
   every attempt.
3. An attempt that could leave the counter at 0 (PIN or PUK at 1 retry) is
   refused unless forced, and then only after a confirmation when a person is
   at the terminal. An unknown counter is refused the same way.
4. Nothing is retried automatically; a PIN guessed from a default (``0000``)
   is only ever sent while its counter is full.
5. A card whose PUK is blocked is dead: no unblock is attempted.

Every refusal and every failure carries the counter before and after.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

from apdu.card import Card, PinStatus, read_uicc_pins
from apdu.command import ResponseApdu
from apdu.errors import (
    CardError,
    ExitCode,
    FileNotFoundOnCardError,
    PinPolicyError,
    UsageError,
)
from apdu.files import USIM_AID_PREFIX
from apdu.status import (
    GSM_SW_ACCESS_CONDITION,
    GSM_SW_CHV_BLOCKED,
    SW_AUTH_METHOD_BLOCKED,
    SW_CONDITIONS_OF_USE,
    SW_REFERENCE_DATA_INVALIDATED,
    SW_RETRIES,
    SW_RETRIES_MASK,
)

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_PIN = "0000"
# New stock (docs/domain.md): 3 PIN attempts, 10 PUK attempts. A counter is "full"
# when it equals these; only then may a default be guessed.
FULL_PIN_RETRIES = 3
# 6984 "reference data not usable": TS 102 221's answer to VERIFY/CHANGE of a
# disabled PIN. Nothing is spent.
SW_PIN_DISABLED = SW_REFERENCE_DATA_INVALIDATED
FULL_PUK_RETRIES = 10

_PIN_RE = re.compile(r"[0-9]{4,8}")
_PUK_RE = re.compile(r"[0-9]{8}")

Operation = Literal["verify", "change", "enable", "disable", "unblock"]


def validate_pin(pin: str, what: str = "PIN") -> None:
    """Refuse a malformed PIN before any card sees it (the value is never echoed)."""
    if not _PIN_RE.fullmatch(pin):
        raise UsageError(
            f"{what} must be 4 to 8 ASCII digits 0-9 ({_shape(pin)}); nothing was sent"
        )


def validate_puk(puk: str) -> None:
    """Refuse a malformed PUK before any card sees it."""
    if not _PUK_RE.fullmatch(puk):
        raise UsageError(
            f"PUK must be exactly 8 ASCII digits 0-9 ({_shape(puk)}); nothing was sent"
        )


def _shape(secret: str) -> str:
    """What is wrong with a secret, without showing it."""
    if not secret:
        return "got nothing"
    if not all(c in "0123456789" for c in secret):
        return f"got {len(secret)} characters, not all of them 0-9"
    return f"got {len(secret)} digits"


def check_attempt(
    which: str, retries: int | None, *, force: bool, confirm: Callable[[str], bool] | None = None
) -> None:
    """Decide whether one attempt on ``which`` may be sent with ``retries`` left.

    Pure: used by the card path here and by the modem path (AT+CPIN). Raises
    :class:`PinPolicyError` naming the rule; returns when the attempt is allowed.
    """
    label = which.upper()
    if retries is None:
        if not force:
            raise PinPolicyError(
                f"refused by PIN policy (counter-unknown): the {label} counter is not known, "
                "so a wrong value could block the card; nothing was sent (counter unknown "
                "before and after); use --force to try anyway",
                rule="counter-unknown",
            )
        _confirm(confirm, f"The {label} counter is unknown. Send the attempt anyway?", retries)
        return
    if retries == 0:
        raise PinPolicyError(
            f"refused by PIN policy (blocked): {label} is blocked; nothing was sent "
            "(counter 0 before and after)",
            rule="blocked",
            retries_before=0,
            retries_after=0,
        )
    if retries == 1:
        if not force:
            raise PinPolicyError(
                f"refused by PIN policy (last-attempt): {label} has 1 retry left; a wrong "
                f"value would {'kill the card' if which.startswith('puk') else 'block it'}. "
                "Nothing was sent (counter 1 before and after); use --force to spend the "
                "last attempt",
                rule="last-attempt",
                retries_before=1,
                retries_after=1,
            )
        _confirm(confirm, f"{label} has 1 retry left. Spend the last attempt?", retries)


def _confirm(confirm: Callable[[str], bool] | None, question: str, retries: int | None) -> None:
    if confirm is not None and not confirm(question):
        raise PinPolicyError(
            "not confirmed; nothing was sent",
            rule="not-confirmed",
            retries_before=retries,
            retries_after=retries,
        )


class PinAttemptError(CardError):
    """The card rejected a PIN/PUK attempt (wrong value, or blocked).

    Carries the counter before and after; never the value sent.
    """

    exit_code = ExitCode.PIN_WRONG

    def __init__(
        self,
        message: str,
        *,
        which: str,
        operation: str,
        sw: int,
        retries_before: int | None,
        retries_after: int | None,
    ) -> None:
        super().__init__(message)
        self.which = which
        self.operation = operation
        self.sw = sw
        self.retries_before = retries_before
        self.retries_after = retries_after


class CardDeadError(CardError):
    """PUK1 is blocked: the card can never be unblocked."""

    exit_code = ExitCode.CARD_DEAD


@dataclass(frozen=True, slots=True)
class PinOutcome:
    """What one successful PIN operation did, with the counters around it."""

    operation: str
    which: str
    retries_before: int | None
    retries_after: int | None
    message: str


EnsureOutcome = Literal["already-default", "changed-to-default", "cannot-prove"]


@dataclass(frozen=True, slots=True)
class EnsureDefaultResult:
    """The warehouse check's verdict on PIN1 = 0000."""

    outcome: EnsureOutcome
    reason: str
    retries_before: int | None
    retries_after: int | None

    @property
    def ok(self) -> bool:
        """True when the card is proven to leave with PIN1 = 0000."""
        return self.outcome != "cannot-prove"


def _exclusive(method: Callable[P, R]) -> Callable[P, R]:
    """Run a policy operation inside one PC/SC transaction.

    The counter read and the attempt it allows must see the same card: another
    program's attempt in between would make the check meaningless.
    """

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        policy = args[0]
        assert isinstance(policy, PinPolicy)
        with policy.card.transport.transaction():
            return method(*args, **kwargs)

    return wrapper


class PinPolicy:
    """The PIN operations of one card, each guarded by the policy above.

    ``force`` allows an attempt that could block a counter; ``confirm`` (when a
    person is at the terminal) is asked before such an attempt is sent.
    """

    def __init__(
        self, card: Card, *, force: bool = False, confirm: Callable[[str], bool] | None = None
    ) -> None:
        self.card = card
        self.force = force
        self.confirm = confirm
        if card.card_type is None:
            card.detect()

    # -- reading --------------------------------------------------------------
    @_exclusive
    def status(self) -> dict[str, PinStatus]:
        """All four counters and the enabled flags, spending nothing."""
        if self.card.card_type == "sim":
            from apdu.card import _sim_pins  # the classic view lives with the reader
            from apdu.files import DF_GSM

            self.card.select(0x3F00)
            return _sim_pins(self.card.select(DF_GSM.fid, fcp=True))
        enabled: dict[int, bool] = {}
        try:
            adf = self.card.select_aid(USIM_AID_PREFIX)
        except FileNotFoundOnCardError:
            adf = None
        if adf is not None and adf.pin_status is not None:
            enabled = {r: adf.pin_status.enabled(r) for r in adf.pin_status.key_references}
        return read_uicc_pins(self.card, enabled)

    @_exclusive
    def counter(self, which: str) -> tuple[int | None, bool]:
        """(retries, blocked) of one PIN or PUK, spending nothing."""
        return self.card.pin_counter(which)

    @_exclusive
    def is_dead(self) -> bool:
        """True when PUK1 is blocked."""
        return self.counter("puk1")[1]

    # -- operations -----------------------------------------------------------
    @_exclusive
    def verify(self, which: str, pin: str) -> PinOutcome:
        """VERIFY under the policy."""
        validate_pin(pin)
        return self._attempt("verify", which, which, lambda: self.card.verify_pin(which, pin))

    @_exclusive
    def change(self, which: str, old: str, new: str) -> PinOutcome:
        """CHANGE PIN under the policy (the old PIN is the attempt)."""
        validate_pin(old, "current PIN")
        validate_pin(new, "new PIN")
        return self._attempt("change", which, which, lambda: self.card.change_pin(which, old, new))

    @_exclusive
    def enable(self, which: str, pin: str) -> PinOutcome:
        """ENABLE VERIFICATION REQUIREMENT under the policy."""
        validate_pin(pin)
        return self._attempt("enable", which, which, lambda: self.card.enable_pin(which, pin))

    @_exclusive
    def disable(self, which: str, pin: str) -> PinOutcome:
        """DISABLE VERIFICATION REQUIREMENT under the policy."""
        validate_pin(pin)
        return self._attempt("disable", which, which, lambda: self.card.disable_pin(which, pin))

    @_exclusive
    def unblock(self, which: str, puk: str, new_pin: str) -> PinOutcome:
        """UNBLOCK PIN with the PUK under the policy; refuses on a dead card."""
        validate_puk(puk)
        validate_pin(new_pin, "new PIN")
        puk_name = "puk" + which[3:]
        retries, blocked = self.counter(puk_name)
        if blocked:
            if puk_name == "puk1":
                raise CardDeadError(
                    "the card is dead: PUK1 is blocked (0 retries); nothing was sent"
                )
            raise PinPolicyError(
                f"{puk_name.upper()} is blocked; nothing was sent",
                rule="blocked",
                retries_before=0,
                retries_after=0,
            )
        return self._attempt(
            "unblock",
            which,
            puk_name,
            lambda: self.card.unblock_pin(which, puk, new_pin),
            known_before=retries,
        )

    def ensure_default(self, known_pin: str | None = None) -> EnsureDefaultResult:
        """Leave the card with PIN1 = 0000 and say how, or prove nothing and touch nothing.

        - ``already-default``: a VERIFY 0000 succeeded, sent only on a full counter;
        - ``changed-to-default``: ``known_pin`` was right and PIN1 is now 0000;
        - ``cannot-prove``: why, with nothing spent beyond what the rules allow.
        """
        if known_pin is not None:
            validate_pin(known_pin, "known PIN")
        if self.counter("pin1")[0] is None and not self.is_dead():
            # "Verification not required": PIN1 is disabled or was verified in
            # this session. A warm reset clears a verification, after which
            # the card reveals the counter again. It happens outside any
            # transaction: a reset ends one.
            self.card.transport.reset()
            self.card.current_df = "MF"
            self.card.application_selected = False
        with self.card.transport.transaction():
            return self._ensure_default_locked(known_pin)

    def _ensure_default_locked(self, known_pin: str | None) -> EnsureDefaultResult:
        if self.is_dead():
            return EnsureDefaultResult("cannot-prove", "the card is dead (PUK1 blocked)", 0, 0)
        retries, blocked = self.counter("pin1")
        if blocked:
            return EnsureDefaultResult(
                "cannot-prove", "PIN1 is blocked; unblock it with the PUK first", 0, 0
            )
        if retries is None:
            return EnsureDefaultResult(
                "cannot-prove",
                "PIN1 is disabled, so its value cannot be checked without "
                "enabling it; enable it first (simtool pin enable)",
                None,
                None,
            )
        if known_pin is not None and known_pin != DEFAULT_PIN:
            check_attempt("pin1", retries, force=self.force, confirm=self.confirm)
            response = self.card.change_pin("pin1", known_pin, DEFAULT_PIN)
            after = self._after_attempt(response, retries, "pin1")
            if response.ok:
                after = FULL_PIN_RETRIES
            elif response.sw == SW_PIN_DISABLED:
                return self._disabled_result(retries)
            else:
                return EnsureDefaultResult(
                    "cannot-prove",
                    f"the given PIN was wrong; PIN1 counter {retries} -> {after}",
                    retries,
                    after,
                )
            return EnsureDefaultResult(
                "changed-to-default", "PIN1 changed from the given PIN to 0000", retries, after
            )
        if retries < FULL_PIN_RETRIES and known_pin is None:
            return EnsureDefaultResult(
                "cannot-prove",
                f"PIN1 counter is {retries} of {FULL_PIN_RETRIES}: the default "
                "is only tried on a full counter; give the PIN with --pin",
                retries,
                retries,
            )
        check_attempt("pin1", retries, force=self.force, confirm=self.confirm)
        response = self.card.verify_pin("pin1", DEFAULT_PIN)
        after = self._after_attempt(response, retries, "pin1")
        if response.ok:
            after = FULL_PIN_RETRIES
            return EnsureDefaultResult(
                "already-default",
                "VERIFY 0000 succeeded on a full counter"
                if known_pin is None
                else "VERIFY 0000 succeeded",
                retries,
                after,
            )
        if response.sw == SW_PIN_DISABLED:
            return self._disabled_result(retries)
        return EnsureDefaultResult(
            "cannot-prove",
            f"PIN1 is not 0000; PIN1 counter {retries} -> {after}; give the "
            "current PIN with --pin to change it",
            retries,
            after,
        )

    def _counter_for_attempt(self, which: str) -> tuple[int | None, bool]:
        """The counter an attempt is judged by.

        A card hides the counter of a PIN verified in this session (empty
        VERIFY answers 9000). The successful verification reset it to its
        maximum (TS 102 221 §9.5), so an enabled, hidden counter is full. A
        disabled PIN's hidden counter stays unknown.
        """
        retries, blocked = self.counter(which)
        if (
            retries is None
            and not blocked
            and which.startswith("pin")
            and self.status()[which].enabled
        ):
            return FULL_PIN_RETRIES, False
        return retries, blocked

    @staticmethod
    def _disabled_result(retries: int | None) -> EnsureDefaultResult:
        return EnsureDefaultResult(
            "cannot-prove",
            "PIN1 is disabled (the card answered 6984), so its value cannot be "
            "checked; enable it with 'simtool pin enable' and run ensure-default again",
            retries,
            retries,
        )

    # -- the one guarded path every operation takes ------------------------------
    def _attempt(
        self,
        operation: Operation,
        which: str,
        counter_name: str,
        send: Callable[[], ResponseApdu],
        known_before: int | None = None,
    ) -> PinOutcome:
        before = known_before
        if before is None:
            before, blocked = self._counter_for_attempt(counter_name)
            if blocked:
                if counter_name == "puk1":
                    raise CardDeadError("the card is dead: PUK1 is blocked; nothing was sent")
                hint = " (unblock it with the PUK)" if counter_name.startswith("pin") else ""
                raise PinPolicyError(
                    f"refused by PIN policy (blocked): {counter_name.upper()} "
                    f"is blocked{hint}; nothing was sent",
                    rule="blocked",
                    retries_before=0,
                    retries_after=0,
                )
            if before is None and operation == "verify":
                # Verification not required (disabled, or already verified).
                return PinOutcome(
                    operation, which, None, None, f"{which.upper()} verification not required"
                )
        check_attempt(counter_name, before, force=self.force, confirm=self.confirm)
        response = send()
        after = self._after_attempt(response, before, counter_name)
        if response.ok:
            # A successful attempt resets the counter to its maximum (TS 102 221 §9.5).
            after = FULL_PUK_RETRIES if counter_name.startswith("puk") else FULL_PIN_RETRIES
            if operation == "unblock":
                # The new PIN counts as verified: a hidden counter is a full one.
                after_pin = self.counter(which)[0]
                if after_pin is None:
                    after_pin = FULL_PIN_RETRIES
                return PinOutcome(
                    operation,
                    which,
                    before,
                    after_pin,
                    f"{which.upper()} unblocked; {which.upper()} retries "
                    f"{after_pin}, {counter_name.upper()} retries {after}",
                )
            return PinOutcome(
                operation,
                which,
                before,
                after,
                f"{operation} {which.upper()}: ok (retries {after})",
            )
        raise PinAttemptError(
            f"{operation} {which.upper()} failed: {self._words(response.sw)}; "
            f"{counter_name.upper()} counter {before} -> {after}",
            which=which,
            operation=operation,
            sw=response.sw,
            retries_before=before,
            retries_after=after,
        )

    def _after_attempt(
        self, response: ResponseApdu, before: int | None, counter_name: str
    ) -> int | None:
        """The counter after a failed attempt: from 63Cx/6983, else read again.

        A classic SIM answers a wrong CHV with 9804, which does not carry the
        counter; reading it costs an exchange but spends nothing.
        """
        sw = response.sw
        if response.ok:
            return before
        if sw & SW_RETRIES_MASK == SW_RETRIES:
            return sw & 0x0F
        if sw in (SW_AUTH_METHOD_BLOCKED, GSM_SW_CHV_BLOCKED):
            return 0
        try:
            return self.counter(counter_name)[0]
        except CardError:
            return None

    @staticmethod
    def _words(sw: int) -> str:
        if sw & SW_RETRIES_MASK == SW_RETRIES:
            return "wrong value"
        if sw in (SW_AUTH_METHOD_BLOCKED, GSM_SW_CHV_BLOCKED):
            return "blocked"
        if sw == GSM_SW_ACCESS_CONDITION:
            return "wrong value (or access condition not fulfilled)"
        if sw == SW_PIN_DISABLED:
            return "the PIN is disabled (enable it first)"
        if sw == SW_CONDITIONS_OF_USE:
            return "conditions of use not satisfied (is the PIN disabled or enabled already?)"
        return f"status word {sw:04X}"
