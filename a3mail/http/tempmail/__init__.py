"""The mail.ry.edu.kg-style temp-mail API (``/api/config``, ``/api/emails``, ``/v1/...``)."""
