"""SMTP front: inbound MX, authenticated submission, and inbound message authentication."""
