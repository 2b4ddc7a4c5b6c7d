"""Fixtures for the glmmTMB backend tests.

``glmmtmb`` skips when R, rpy2 or glmmTMB are unavailable (the reason says which, and the fix),
or fails with that message under ``--require-backend glmmtmb`` (tests/conftest.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import require_backend


@pytest.fixture
def glmmtmb(request: pytest.FixtureRequest):
    require_backend(request, "glmmtmb")
    from backends.base import get_backend

    return get_backend("glmmtmb")
