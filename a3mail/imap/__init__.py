"""The IMAP4rev1 front: twisted.mail's IMAP4Server subclassed, fixed and extended over the store."""
