"""The store: the only code in a3mail that speaks SQL or touches mail files."""

from a3mail.store.db import Database, StoreError, StoreUnavailable
from a3mail.store.store import Store

__all__ = ["Database", "Store", "StoreError", "StoreUnavailable"]
