"""Which virtual cards a lab holds: profiles by object, name or file, and the stock cards."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from apdu.errors import UsageError
from apdu.lab.layout import MAX_SLOTS
from apdu.virtual import CardProfile, lab_profile, load_profile

__all__ = ["ProfileSource", "lab_card_profiles", "resolve_profile"]

ProfileSource = CardProfile | str | Path


def resolve_profile(source: ProfileSource) -> CardProfile:
    """A profile object, a profile name (``profiles/<name>.json``) or a JSON file path."""
    return source if isinstance(source, CardProfile) else load_profile(source)


def lab_card_profiles(
    cards: int | None = None, profiles: Sequence[ProfileSource] = (), seed: int = 0
) -> list[CardProfile]:
    """The cards of a lab: ``profiles`` in the first slots, ``lab_profile(slot, seed)`` after.

    ``cards`` defaults to 2, or to the number of profiles when more are given.
    """
    chosen = [resolve_profile(p) for p in profiles]
    if cards is None:
        cards = max(2, len(chosen))
    if not 0 <= cards <= MAX_SLOTS:
        raise UsageError(f"a lab holds 0 to {MAX_SLOTS} cards, not {cards}")
    if len(chosen) > cards:
        raise UsageError(f"{len(chosen)} profiles given for {cards} cards")
    return chosen + [lab_profile(slot, seed) for slot in range(len(chosen), cards)]
