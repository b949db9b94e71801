"""The admin REST API (``/api/v1``): one Klein app per resource group, see :mod:`.api`."""
