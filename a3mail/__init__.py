"""a3mail: a complete mail server on Twisted, PostgreSQL and maildir."""

__version__ = "0.1.0"
