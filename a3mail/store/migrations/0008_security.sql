-- a3mail schema, version 8: security controls: the IP blocklist, live security settings
-- (rate limits), and an index for counting failed logins per address.

-- ip_blocks: one blocked address or network.  A single address is stored as a /32 (IPv4)
-- or /128 (IPv6) network.  expires_at NULL = permanent.  Rows past expires_at no longer
-- block anything and are pruned.  automatic: made by the failed-login rule.
CREATE TABLE ip_blocks (
    id          bigserial PRIMARY KEY,
    network     cidr NOT NULL UNIQUE,
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    created_by  text,
    automatic   boolean NOT NULL DEFAULT false,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX ip_blocks_expires_idx ON ip_blocks (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX ip_blocks_network_idx ON ip_blocks USING gist (network inet_ops);

-- security_settings: settings changed at run time through the API (e.g. "rate_limits"),
-- shared by every a3mail process; a row overrides the configuration file's values.
CREATE TABLE security_settings (
    name        text PRIMARY KEY CHECK (name <> ''),
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);

-- Failed logins from one address within a window (the automatic block), and the
-- overview's offending addresses.
CREATE INDEX audit_log_ip_idx ON audit_log (ip, event_type, at);

-- An address recorded as text (audit_log.ip) as inet, NULL if it is not one.
CREATE FUNCTION a3mail_try_inet(p text) RETURNS inet LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p::inet;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
