-- a3mail schema, version 3: what the admin HTTP API needs.
--
-- http_rate_limits: request counts per rate-limit bucket ("key:<key_id>" or "ip:<address>")
-- and fixed window (its start, in seconds since the epoch).  Each a3mail process counts in
-- memory and adds its deltas here about once a second, reading back the shared totals, so
-- that several processes enforce one limit.  Rows of past windows are pruned.
CREATE TABLE http_rate_limits (
    bucket       text NOT NULL CHECK (bucket <> ''),
    window_start bigint NOT NULL,
    count        bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX http_rate_limits_window_idx ON http_rate_limits (window_start);

-- A user's last login (GET /api/v1/users/{id}/stats, user listings): the newest
-- auth.success record whose actor is the address.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, event_type, at);

-- GET /api/v1/stats counts the messages stored today.
CREATE INDEX messages_created_idx ON messages (created_at);
