"""twistd plugin for a3mail: ``twistd -n a3mail``. Kept tiny; the work is in a3mail.tap."""

from twisted.application.service import ServiceMaker

a3mail = ServiceMaker(
    "a3mail",
    "a3mail.tap",
    "a3mail mail server: SMTP, IMAP4, POP3 and HTTP API over PostgreSQL + maildir",
    "a3mail",
)
