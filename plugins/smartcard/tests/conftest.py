"""Fixtures: a private real pcscd with the vpcd driver; virtual YubiKeys are inserted into it."""

import pytest

from otpme_auth_smartcard.testing import Pcscd


@pytest.fixture
def pcscd():
    """A started :class:`~otpme_auth_smartcard.testing.Pcscd` (fails, never skips, without
    pcscd / vsmartcard-vpcd: CI installs them from .ci/apt-packages.txt)."""
    daemon = Pcscd()
    cards = []
    real_card = daemon.card

    def card(**kw):
        c = real_card(**kw)
        cards.append(c)
        return c
    daemon.card = card
    yield daemon
    for c in cards:
        c.remove()
    daemon.stop()
