"""Outbound delivery: the queue runner, MX resolution, the ESMTP client, bounces, DKIM."""
