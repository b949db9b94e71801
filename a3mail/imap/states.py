"""The session states of RFC 3501 section 3."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """RFC 3501 section 3 states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"
