-- a3mail schema, version 5: outbound delivery (the queue runner's bookkeeping).
--
-- done_recipients: the recipients of an entry that are finished (delivered or failed for
-- good); a retry only sends to the others.  delay_warned: the "delayed" DSN was sent.
-- outbound_results: one row per recipient per attempt outcome (sent, deferred, failed),
-- with the remote reply, for `a3mail queue show` and the bounce report.

ALTER TABLE outbound_queue
    ADD COLUMN done_recipients text[] NOT NULL DEFAULT '{}',
    ADD COLUMN delay_warned boolean NOT NULL DEFAULT false;

CREATE TABLE outbound_results (
    id          bigserial PRIMARY KEY,
    entry_id    bigint NOT NULL REFERENCES outbound_queue (id) ON DELETE CASCADE,
    recipient   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('sent', 'deferred', 'failed')),
    code        integer NOT NULL,
    reply       text NOT NULL DEFAULT '',
    remote_mta  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_results_entry_idx ON outbound_results (entry_id);
