"""POP3: the server protocol, the maildrop over the store's INBOX, the listener factory."""
