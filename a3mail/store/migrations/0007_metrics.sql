-- a3mail schema, version 7: custom metrics (POST /api/v1/metrics/custom), exported by
-- GET /metrics as a3mail_custom_<name>.  One row per (name, label set); every row of a
-- name has the same kind.  Counters add the posted value, gauges replace it.
CREATE TABLE custom_metrics (
    name        text NOT NULL,
    labels      jsonb NOT NULL DEFAULT '{}',
    kind        text NOT NULL CHECK (kind IN ('counter', 'gauge')),
    value       double precision NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, labels)
);
