"""The suite reads this checkout's shipped files, whatever the shell that runs it points elsewhere."""

from __future__ import annotations

import os

#: settings that would point the suite at a user's own files instead of the checkout's: a user's
#: manifests folder (with their calibrations), traces or config. Kept: EDGECASCADE_CACHE (where the
#: pulled models are) and EDGECASCADE_DATA (where the datasets are).
_USERS_OWN = ("EDGECASCADE_MANIFESTS", "EDGECASCADE_TRACES", "EDGECASCADE_CONFIG")


def pytest_configure() -> None:
    for name in _USERS_OWN:
        os.environ.pop(name, None)
