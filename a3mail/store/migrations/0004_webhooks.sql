-- a3mail schema, version 4: webhooks and their durable outbox.
--
-- webhooks: one row per registered endpoint.  The secret is kept in plain text because the
-- dispatcher needs it to compute each delivery's HMAC-SHA256 signature; the store returns
-- it only when the webhook is created.  account_id NULL: an admin webhook that hears every
-- account's mail events; set: only that account's.
--
-- webhook_deliveries is the outbox: ONE row per (webhook, event), keyed by
-- (webhook_id, event, event_key) so that every a3mail process hearing the same bus event
-- inserts it at most once (INSERT ... ON CONFLICT DO NOTHING).  The JSON body is frozen at
-- insertion.  Dispatchers lease due rows with FOR UPDATE SKIP LOCKED (leased_until,
-- leased_by); a lease that expires (a dead process) is taken over.  Every HTTP attempt is
-- one webhook_attempts row.

CREATE TABLE webhooks (
    id              bigserial PRIMARY KEY,
    url             text NOT NULL CHECK (url <> '' AND length(url) <= 2048),
    events          text[] NOT NULL CHECK (
                        cardinality(events) > 0 AND events <@ ARRAY[
                            'email.received', 'email.sent', 'email.bounced', 'email.deferred'
                        ]::text[]),
    secret          text NOT NULL CHECK (secret <> ''),
    account_id      bigint REFERENCES accounts (id) ON DELETE CASCADE,
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_success_at timestamptz,
    last_failure_at timestamptz,
    failure_count   integer NOT NULL DEFAULT 0 CHECK (failure_count >= 0)  -- consecutive
);
CREATE INDEX webhooks_account_idx ON webhooks (account_id);

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    webhook_id      bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           text NOT NULL,
    event_key       text NOT NULL,     -- what happened, e.g. message:<acct>:<box>:<uid>:<uidvalidity>
    event_id        uuid NOT NULL,     -- the same for every webhook told of one event
    body            text NOT NULL,     -- the exact JSON posted (signed as UTF-8 bytes)
    status          text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    response_status integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    leased_until    timestamptz,
    leased_by       text,
    UNIQUE (webhook_id, event, event_key)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (created_at)
    WHERE status IN ('delivered', 'failed');

CREATE TABLE webhook_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         integer NOT NULL CHECK (attempt > 0),
    started_at      timestamptz NOT NULL,
    duration_ms     integer NOT NULL CHECK (duration_ms >= 0),
    response_status integer,
    error           text,
    worker          text NOT NULL,
    UNIQUE (delivery_id, attempt)
);

-- The catch-up scan (messages delivered while no dispatcher heard the bus) finds recent
-- messages with messages_created_idx (migration 0003).
