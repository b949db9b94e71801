-- a3mail schema, version 10: delivery status notices waiting to be sent.
--
-- A bounce or delay warning is decided when an attempt is recorded; its notice row is
-- inserted in the same transaction as the attempt's results, so a crash after the commit
-- cannot lose it.  The runner that recorded it holds a lease on it, sends the DSN (local
-- delivery or the outbound queue) and deletes the row; a notice whose lease expired (its
-- process died) is sent by the next runner that looks.  At least once: a crash between
-- sending and deleting sends it twice.
CREATE TABLE outbound_notices (
    id            bigserial PRIMARY KEY,
    entry_id      bigint NOT NULL,                -- the queue entry it reports on (may be gone)
    action        text NOT NULL CHECK (action IN ('failed', 'delayed')),
    sender        text NOT NULL CHECK (sender <> ''),  -- who gets it (never the null sender)
    recipients    jsonb NOT NULL,                 -- [{recipient, code, reply, remote_mta}]
    headers       bytea NOT NULL,                 -- the original message's header block
    arrival       timestamptz NOT NULL,
    leased_by     text,
    leased_until  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_notices_due_idx ON outbound_notices (leased_until);
