"""The virtual UICC: a card model (not a replay) for the lab, the modem simulator and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apdu.virtual.profile import CardProfile, lab_profile, load_profile, save_profile

if TYPE_CHECKING:
    from apdu.virtual.card import VirtualUicc

__all__ = ["CardProfile", "VirtualUicc", "lab_profile", "load_profile", "save_profile"]


def __getattr__(name: str) -> Any:
    # The card model (Milenage, hence the cryptography package) is imported
    # on first use: processes that only read profiles, such as every card
    # command finding the lab, do not pay for it.
    if name == "VirtualUicc":
        from apdu.virtual.card import VirtualUicc

        return VirtualUicc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
