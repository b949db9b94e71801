-- a3mail schema, version 6: temp-mail addresses (the mail.ry.edu.kg-style API).
--
-- domains.tempmail: the domain offers temp addresses (GET /api/config lists it).
-- accounts.created_by_key: the key_id of the API key that created a temp address; only
-- that key sees it.  NULL for every ordinary account: the reaper never touches those.
-- accounts.tempmail_token: SHA-256 of the address's own token (returned once at creation,
-- usable as X-API-Key for that one address).
ALTER TABLE domains ADD COLUMN tempmail boolean NOT NULL DEFAULT false;
ALTER TABLE accounts ADD COLUMN created_by_key text;
ALTER TABLE accounts ADD COLUMN tempmail_token bytea UNIQUE;
CREATE INDEX accounts_created_by_key_idx ON accounts (created_by_key, id)
    WHERE created_by_key IS NOT NULL;
CREATE INDEX accounts_tempmail_expiry_idx ON accounts (expires_at)
    WHERE created_by_key IS NOT NULL;
