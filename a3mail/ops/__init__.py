"""Operations: background services that run beside the protocol listeners (webhooks, ...)."""
