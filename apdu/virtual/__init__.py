"""The virtual UICC: a card model (not a replay) for the lab, the modem simulator and tests."""

from apdu.virtual.card import VirtualUicc
from apdu.virtual.profile import CardProfile, lab_profile, load_profile, save_profile

__all__ = ["CardProfile", "VirtualUicc", "lab_profile", "load_profile", "save_profile"]
