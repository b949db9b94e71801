"""a3mail's HTTP surfaces: the admin REST API (``/api/v1``) and, later, ops and temp-mail.

See :mod:`a3mail.http.factory` for how the surfaces share the ``http`` listener.
"""
