"""Authentication: argon2id passwords, API keys, and twisted.cred checkers over the store."""
