-- a3mail schema, version 11: announce changes that can end an API key's validity.
--
-- Each a3mail process caches the keys it authenticated for a few seconds (store/keys.py).
-- These statement triggers tell every process, through the store's event channel, when a
-- key was revoked, expired early, re-scoped or deleted, or its account was disabled,
-- renamed or deleted, whatever code (or psql session) made the change.  The event is
-- delivered when the change commits.  Updates of last_used_at do not fire them.
CREATE FUNCTION notify_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        CASE WHEN TG_TABLE_SCHEMA = 'public' THEN 'a3mail_events'
             ELSE 'a3mail_events_' || TG_TABLE_SCHEMA END,
        '{"type":"auth.changed"}');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_auth_changed
    AFTER UPDATE OF key_hash, secret_hash, permissions, expires_at, revoked_at, account_id
          OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();

CREATE TRIGGER accounts_auth_changed
    AFTER UPDATE OF enabled, address OR DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();
