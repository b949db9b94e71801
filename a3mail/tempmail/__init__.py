"""Temp-mail services that run beside the listeners (the expiry reaper)."""
