"""An emulator of the Radiopaedia API, built from docs/protocol.md (not from casesync's client).

Tests run it in-process; users run it with ``casesync emulator`` to try casesync offline.
"""

from casesync.emulator.anonymiser_check import first_violation
from casesync.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOGIN, EmulatorConfig
from casesync.emulator.server import Emulator, EmulatorThread

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_LOGIN",
    "Emulator",
    "EmulatorConfig",
    "EmulatorThread",
    "first_violation",
]
