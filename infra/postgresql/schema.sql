-- Orleans.MoE: cluster membership and grain state in PostgreSQL.
-- Applied by the silos at start (idempotent); also runnable by hand: psql -f infra/postgresql/schema.sql

-- One row per cluster: every membership change bumps the version (optimistic concurrency).
CREATE TABLE IF NOT EXISTS moe_membership_version (
    cluster_id text PRIMARY KEY,
    version    bigint NOT NULL
);

-- One row per silo incarnation (address includes its generation).
CREATE TABLE IF NOT EXISTS moe_membership (
    cluster_id  text        NOT NULL,
    silo        text        NOT NULL,
    status      integer     NOT NULL,
    start_time  timestamptz NOT NULL,
    i_am_alive  timestamptz NOT NULL,
    suspicions  jsonb       NOT NULL,
    metadata    jsonb       NOT NULL,
    etag        bigint      NOT NULL,
    PRIMARY KEY (cluster_id, silo)
);

-- Grain state: one row per (state name, grain); the etag guards against stale writers.
CREATE TABLE IF NOT EXISTS moe_grain_state (
    service_id text        NOT NULL,
    state_name text        NOT NULL,
    grain_id   text        NOT NULL,
    etag       text        NOT NULL,
    payload    bytea       NOT NULL,
    modified   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, state_name, grain_id)
);
