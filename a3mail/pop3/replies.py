"""POP3 reply lines (RFC 1939), with the response codes of RFC 2449 and RFC 3206.

None of them carries text from the client or from an exception.
"""

ERR_AUTH_FAILED = b"-ERR [AUTH] Authentication failed."
ERR_PLAINTEXT = (
    b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS."
)
ERR_IN_USE = b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
ERR_TEMPORARY = b"-ERR [SYS/TEMP] Temporary server failure, try again later."
ERR_LOCK_LOST = b"-ERR [SYS/TEMP] Mailbox lock lost; closing without deleting anything."
ERR_NOT_COMMITTED = b"-ERR [SYS/TEMP] The marked messages could not be deleted; none were."
ERR_UNKNOWN = b"-ERR Unknown command."
ERR_STATE = b"-ERR Command not valid in this state."
ERR_ARGUMENTS = b"-ERR Wrong arguments."
ERR_NO_MESSAGE = b"-ERR No such message."
ERR_DELETED = b"-ERR Message is deleted."
ERR_GONE = b"-ERR Message is no longer available."
ERR_LINE_TOO_LONG = b"-ERR Line too long."
ERR_TOO_MANY_ERRORS = b"-ERR Too many errors, closing connection."
ERR_IDLE = b"-ERR Disconnected for inactivity."
