-- a3mail schema, version 2: the outbound queue (mail for remote recipients).
--
-- One outbound_messages row per queued message: its envelope sender and its file under
-- mail/queue/ (a hard link made before the commit that inserts the row; the file is removed
-- only after the last of its entries is finished).  One outbound_queue entry per
-- (message, destination domain) with that domain's recipients; queue runners lease entries
-- with FOR UPDATE SKIP LOCKED (leased_until, leased_by) and record each attempt.

CREATE TABLE outbound_messages (
    id          bigserial PRIMARY KEY,
    sender      text NOT NULL,              -- envelope MAIL FROM; '' is the null sender <>
    blob_path   text NOT NULL UNIQUE,       -- relative to the data dir: mail/queue/<unique>
    size        bigint NOT NULL CHECK (size >= 0),
    skip_bytes  integer NOT NULL DEFAULT 0 CHECK (skip_bytes >= 0),  -- leading bytes not sent
                                            -- (the Return-Path header of local delivery)
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbound_queue (
    id              bigserial PRIMARY KEY,
    message_id      bigint NOT NULL REFERENCES outbound_messages (id) ON DELETE CASCADE,
    domain          text NOT NULL CHECK (domain <> ''),   -- lower-case (A-label) or [literal]
    recipients      text[] NOT NULL CHECK (cardinality(recipients) > 0),
    state           text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'bounced')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    leased_until    timestamptz,
    leased_by       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, domain)
);
CREATE INDEX outbound_queue_due_idx ON outbound_queue (next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbound_queue_message_idx ON outbound_queue (message_id);
