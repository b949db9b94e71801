"""Every SMTP reply a3mail sends, as a named constant with its enhanced status code.

RFC 3463 / RFC 2034: each 2xx, 4xx and 5xx reply text starts with an enhanced status
code (``class.subject.detail``).  The greeting (220), the replies to HELO/EHLO and the
intermediate 3xx replies (354, 334) carry none, as RFC 2034 says.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Reply:
    """One SMTP reply: code, enhanced status code ("" for none) and text (lines)."""

    code: int
    status: str
    text: str

    def with_text(self, text: str) -> Reply:
        """The same codes with another text."""
        return attrs.evolve(self, text=text)

    def lines(self) -> list[bytes]:
        """The reply as CRLF-less lines: ``250-first``, ..., ``250 last``."""
        texts = self.text.split("\n") or [""]
        out = []
        for i, text in enumerate(texts):
            separator = " " if i == len(texts) - 1 else "-"
            prefix = f"{self.status} " if self.status else ""
            out.append(f"{self.code}{separator}{prefix}{text}".encode())
        return out

    @property
    def is_error(self) -> bool:
        """True for 4xx and 5xx replies."""
        return self.code >= 400


# -- connection --------------------------------------------------------------------------
CLOSING = Reply(221, "2.0.0", "Bye")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections from your address, try later")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
TIMEOUT = Reply(421, "4.4.2", "Timeout, closing connection")
SHUTTING_DOWN = Reply(421, "4.3.0", "Service not available, closing connection")

# -- generic -----------------------------------------------------------------------------
OK = Reply(250, "2.0.0", "OK")
RESET = Reply(250, "2.0.0", "Reset")
HELP = Reply(214, "2.0.0", "See RFC 5321")
CANNOT_VRFY = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message for delivery")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")
UNAVAILABLE = Reply(451, "4.3.0", "Temporary failure, try again later")
UNRECOGNIZED = Reply(500, "5.5.2", "Command unrecognized")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
BAD_CHARACTERS = Reply(500, "5.5.2", "Invalid characters in command")
SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST = Reply(503, "5.5.1", "Send HELO or EHLO first")

# -- MAIL FROM ---------------------------------------------------------------------------
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already given")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by the authenticated user")
NULL_SENDER_REFUSED = Reply(553, "5.7.1", "Null sender not allowed for submission")
BAD_ADDRESS = Reply(553, "5.1.3", "Invalid address syntax")
NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "Unsupported MAIL/RCPT parameter")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds the limit")

# -- RCPT TO -----------------------------------------------------------------------------
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL before RCPT")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
MAILBOX_DISABLED = Reply(550, "5.2.1", "Mailbox disabled")
OVER_QUOTA_TEMPORARY = Reply(452, "4.2.2", "Mailbox full")
OVER_QUOTA_PERMANENT = Reply(552, "5.2.2", "Mailbox full")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")

# -- DATA --------------------------------------------------------------------------------
START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
NEED_RECIPIENTS = Reply(503, "5.5.1", "Need RCPT before DATA")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
DISCARDED = Reply(554, "5.5.0", "Message discarded: DATA was refused")
DATA_LINE_TOO_LONG = Reply(552, "5.5.2", "Message refused: a line is too long")
TOO_MANY_HOPS = Reply(554, "5.4.6", "Too many hops (mail loop?)")
ACCEPTED = Reply(250, "2.0.0", "Message accepted")
POLICY_REJECTED = Reply(550, "5.7.1", "Message refused: sender authentication failed (DMARC)")
NOT_DELIVERED = Reply(550, "5.1.1", "No recipient could take the message")

# -- BDAT (RFC 3030) ---------------------------------------------------------------------
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT size [LAST]")
BDAT_IN_PROGRESS = Reply(503, "5.5.1", "DATA not allowed after BDAT")


def chunk_received(octets: int) -> Reply:
    """The reply to a BDAT chunk that is not the last: how much of the message is in."""
    return Reply(250, "2.0.0", f"{octets} octets received")


# -- STARTTLS and AUTH -------------------------------------------------------------------
TLS_READY = Reply(220, "2.0.0", "Ready to start TLS")
TLS_ALREADY = Reply(503, "5.5.1", "TLS already active")
TLS_UNAVAILABLE = Reply(454, "4.7.0", "TLS not available")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not allowed during a mail transaction")
AUTH_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication mechanism")
AUTH_ABORTED = Reply(501, "5.0.0", "Authentication aborted")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Invalid base64 data")
AUTH_NEEDS_TLS = Reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
AUTH_TEMPORARY = Reply(454, "4.7.0", "Temporary authentication failure")
