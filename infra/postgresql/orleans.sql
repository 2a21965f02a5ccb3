-- Orleans.MoE: schema for Orleans' ADO.NET providers on PostgreSQL (15 or later).
--
--   Microsoft.Orleans.Clustering.AdoNet 10.4.2    (silo membership, client gateway list)
--   Microsoft.Orleans.Persistence.AdoNet 10.4.2   (grain storage, [PersistentState])
--   ADO.NET invariant "Npgsql" (Npgsql 10.x)
--
-- Install (idempotent: safe on an empty database and on an installed one):
--   psql -v ON_ERROR_STOP=1 -h HOST -U USER -d DB -f infra/postgresql/orleans.sql
--
-- How the providers use it: at start each provider runs
--   SELECT QueryKey, QueryText FROM OrleansQuery
-- and from then on executes only the query texts stored there, with named parameters
-- (@DeploymentId, @GrainIdHash, ...) that Npgsql binds by name (so Npgsql's SQL rewriting must stay
-- on, its default; the AppContext switch Npgsql.EnableSqlRewriting=false breaks them). Everything below exists to back
-- those query texts. Identifiers are unquoted, so PostgreSQL folds them to lower case; result
-- columns are quoted ("Version", "PayloadBinary", ...) because the providers read them by name.
-- Functions and tables are created in the first schema of the installing session's search_path
-- (normally "public"); the silos' connections must have that schema on their search_path.
-- Timestamps are timestamptz: the providers send DateTime parameters as DbType.DateTime, which
-- Npgsql 6+ sends as "timestamp with time zone" (UTC), so the server's TimeZone does not matter.

BEGIN;

-- Two installers running at once would race on CREATE ... IF NOT EXISTS; take turns.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('orleans.sql schema install')); END $$;

-------------------------------------------------------------------------------------------------
-- The providers' query catalogue: QueryKey -> QueryText (filled at the end of this script).
CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  varchar(64) NOT NULL PRIMARY KEY,
    QueryText text        NOT NULL
);

-------------------------------------------------------------------------------------------------
-- Clustering (membership)
--
-- Orleans' membership protocol is optimistic: every change to the set of silos (a new silo row,
-- a status change, a suspicion vote) must name the table version it was based on and moves the
-- version one up. One row per cluster (ClusterOptions.ClusterId, sent as @DeploymentId) holds it.
CREATE TABLE IF NOT EXISTS orleans_membership_version
(
    deployment_id text        NOT NULL PRIMARY KEY,
    version       integer     NOT NULL DEFAULT 0,
    changed_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per silo incarnation: (address, port, generation) identifies it; generation changes
-- every time a silo process starts. status is Orleans' SiloStatus (3 Active, 4 ShuttingDown,
-- 5 Stopping, 6 Dead). suspect_times is Orleans' own text: "silo,time|silo,time|...".
-- proxy_port is the gateway port (0 when the silo is not a gateway).
CREATE TABLE IF NOT EXISTS orleans_membership
(
    deployment_id   text        NOT NULL REFERENCES orleans_membership_version (deployment_id),
    address         text        NOT NULL,
    port            integer     NOT NULL,
    generation      integer     NOT NULL,
    silo_name       text        NOT NULL,
    host_name       text        NOT NULL,
    status          integer     NOT NULL,
    proxy_port      integer     NOT NULL,
    suspect_times   text        NULL,
    start_time      timestamptz NOT NULL,
    i_am_alive_time timestamptz NOT NULL,
    PRIMARY KEY (deployment_id, address, port, generation)
);

-- InsertMembershipKey: add a silo row and move the table version on, both or neither.
-- false when the version is stale (someone else changed the table first) or the row exists.
CREATE OR REPLACE FUNCTION orleans_membership_insert(
    p_deployment_id text, p_address text, p_port integer, p_generation integer,
    p_silo_name text, p_host_name text, p_status integer, p_proxy_port integer,
    p_start_time timestamptz, p_i_am_alive_time timestamptz, p_expected_version integer)
RETURNS boolean
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE orleans_membership_version
       SET version = version + 1, changed_at = now()
     WHERE deployment_id = p_deployment_id AND version = p_expected_version;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    INSERT INTO orleans_membership (deployment_id, address, port, generation, silo_name, host_name,
                                    status, proxy_port, suspect_times, start_time, i_am_alive_time)
    VALUES (p_deployment_id, p_address, p_port, p_generation, p_silo_name, p_host_name,
            p_status, p_proxy_port, NULL, p_start_time, p_i_am_alive_time);
    RETURN true;
EXCEPTION
    -- the row was there already: leaving this block also undoes the version step above
    WHEN unique_violation THEN
        RETURN false;
END;
$$;

-- UpdateMembershipKey: change a silo's status / suspicions / liveness and move the table
-- version on, both or neither. false when the version is stale or the silo row is missing.
CREATE OR REPLACE FUNCTION orleans_membership_update(
    p_deployment_id text, p_address text, p_port integer, p_generation integer,
    p_status integer, p_suspect_times text, p_i_am_alive_time timestamptz,
    p_expected_version integer)
RETURNS boolean
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE orleans_membership_version
       SET version = version + 1, changed_at = now()
     WHERE deployment_id = p_deployment_id AND version = p_expected_version;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE orleans_membership
       SET status = p_status, suspect_times = p_suspect_times, i_am_alive_time = p_i_am_alive_time
     WHERE deployment_id = p_deployment_id
       AND address = p_address AND port = p_port AND generation = p_generation;
    IF NOT FOUND THEN
        RAISE SQLSTATE 'P0002';   -- no_data_found: caught below, which undoes the version step
    END IF;
    RETURN true;
EXCEPTION
    WHEN no_data_found THEN
        RETURN false;
END;
$$;

-------------------------------------------------------------------------------------------------
-- Grain persistence
--
-- One row per grain state. The provider identifies a state by service (ClusterOptions.ServiceId),
-- the state's name (the first argument of [PersistentState], sent as @GrainTypeString) and the
-- grain key: n0/n1 carry a Guid or integer key, ext the key extension or the whole string key.
-- The two hashes are the provider's own hashes of key and name; they make lookups cheap.
-- The grain's class is NOT part of the identity (the provider does not send it): two grain
-- classes with equal keys and equal state names on one provider and ServiceId share one row.
-- version is the ETag: 1 on first write, +1 on every write or clear. payload NULL = cleared.
CREATE TABLE IF NOT EXISTS orleans_grain_state
(
    service_id      text        NOT NULL,
    grain_type_hash integer     NOT NULL,
    grain_type      text        NOT NULL,
    grain_id_hash   integer     NOT NULL,
    grain_id_n0     bigint      NOT NULL,
    grain_id_n1     bigint      NOT NULL,
    grain_id_ext    text        NULL,
    payload         bytea       NULL,
    version         integer     NOT NULL,
    modified_at     timestamptz NOT NULL DEFAULT now()
);

-- The identity of a state, and the arbiter when two first writers race (only one insert wins).
-- md5() keeps index entries short whatever the length of a string key; NULLS NOT DISTINCT
-- (PostgreSQL 15) makes "no extension" a value of its own.
CREATE UNIQUE INDEX IF NOT EXISTS orleans_grain_state_identity
    ON orleans_grain_state (service_id, grain_type_hash, grain_id_hash, grain_id_n0, grain_id_n1,
                            md5(grain_type), md5(grain_id_ext))
    NULLS NOT DISTINCT;

-- WriteToStorageKey: write a state if the caller's ETag is current; returns the new version, or
-- NULL when it is not (another writer got there first). The provider turns NULL into
-- InconsistentStateException. p_expected_version NULL means "no state stored yet".
-- Racing updates serialize on the row lock; the loser re-checks version and matches nothing.
CREATE OR REPLACE FUNCTION orleans_grain_state_write(
    p_service_id text, p_grain_type_hash integer, p_grain_type text,
    p_grain_id_hash integer, p_grain_id_n0 bigint, p_grain_id_n1 bigint, p_grain_id_ext text,
    p_expected_version integer, p_payload bytea)
RETURNS integer
LANGUAGE plpgsql AS
$$
DECLARE
    new_version integer;
BEGIN
    IF p_expected_version IS NULL THEN
        INSERT INTO orleans_grain_state (service_id, grain_type_hash, grain_type, grain_id_hash,
                                         grain_id_n0, grain_id_n1, grain_id_ext, payload, version)
        VALUES (p_service_id, p_grain_type_hash, p_grain_type, p_grain_id_hash,
                p_grain_id_n0, p_grain_id_n1, p_grain_id_ext, p_payload, 1)
        ON CONFLICT DO NOTHING
        RETURNING version INTO new_version;
    ELSE
        UPDATE orleans_grain_state
           SET payload = p_payload, version = version + 1, modified_at = now()
         WHERE service_id = p_service_id
           AND grain_type_hash = p_grain_type_hash AND grain_id_hash = p_grain_id_hash
           AND grain_id_n0 = p_grain_id_n0 AND grain_id_n1 = p_grain_id_n1
           AND grain_type = p_grain_type AND grain_id_ext IS NOT DISTINCT FROM p_grain_id_ext
           AND version = p_expected_version
        RETURNING version INTO new_version;
    END IF;
    RETURN new_version;
END;
$$;

-- ClearStorageKey: forget a state's payload but keep its row and move the version on (so a
-- stale writer still fails). Returns the new version, NULL on an ETag mismatch.
CREATE OR REPLACE FUNCTION orleans_grain_state_clear(
    p_service_id text, p_grain_type_hash integer, p_grain_type text,
    p_grain_id_hash integer, p_grain_id_n0 bigint, p_grain_id_n1 bigint, p_grain_id_ext text,
    p_expected_version integer)
RETURNS integer
LANGUAGE sql AS
$$
    UPDATE orleans_grain_state
       SET payload = NULL, version = version + 1, modified_at = now()
     WHERE service_id = p_service_id
       AND grain_type_hash = p_grain_type_hash AND grain_id_hash = p_grain_id_hash
       AND grain_id_n0 = p_grain_id_n0 AND grain_id_n1 = p_grain_id_n1
       AND grain_type = p_grain_type AND grain_id_ext IS NOT DISTINCT FROM p_grain_id_ext
       AND version = p_expected_version
    RETURNING version;
$$;

-- DeleteStorageKey (only with AdoNetGrainStorageOptions.DeleteStateOnClear = true): remove the
-- row if the ETag is current. Returns the deleted version + 1 (the provider only checks that it
-- differs from the caller's ETag), NULL on an ETag mismatch.
CREATE OR REPLACE FUNCTION orleans_grain_state_delete(
    p_service_id text, p_grain_type_hash integer, p_grain_type text,
    p_grain_id_hash integer, p_grain_id_n0 bigint, p_grain_id_n1 bigint, p_grain_id_ext text,
    p_expected_version integer)
RETURNS integer
LANGUAGE sql AS
$$
    DELETE FROM orleans_grain_state
     WHERE service_id = p_service_id
       AND grain_type_hash = p_grain_type_hash AND grain_id_hash = p_grain_id_hash
       AND grain_id_n0 = p_grain_id_n0 AND grain_id_n1 = p_grain_id_n1
       AND grain_type = p_grain_type AND grain_id_ext IS NOT DISTINCT FROM p_grain_id_ext
       AND version = p_expected_version
    RETURNING version + 1;
$$;

-------------------------------------------------------------------------------------------------
-- The query texts. Parameter names and result column names are fixed by the providers.
INSERT INTO OrleansQuery (QueryKey, QueryText)
VALUES
-- Clustering ------------------------------------------------------------------------------------
-- Create the cluster's version row if missing; one row, one boolean: was it created by us.
('InsertMembershipVersionKey', $q$
WITH created AS (
    INSERT INTO orleans_membership_version (deployment_id, version) VALUES (@DeploymentId, 0)
    ON CONFLICT (deployment_id) DO NOTHING
    RETURNING 1)
SELECT EXISTS (SELECT 1 FROM created);
$q$),

('InsertMembershipKey', $q$
SELECT orleans_membership_insert(@DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName,
                                 @Status, @ProxyPort, @StartTime, @IAmAliveTime, @Version);
$q$),

('UpdateMembershipKey', $q$
SELECT orleans_membership_update(@DeploymentId, @Address, @Port, @Generation, @Status,
                                 @SuspectTimes, @IAmAliveTime, @Version);
$q$),

-- Heartbeat: not a membership change, so the table version stays as it is.
('UpdateIAmAlivetimeKey', $q$
UPDATE orleans_membership
   SET i_am_alive_time = @IAmAliveTime
 WHERE deployment_id = @DeploymentId
   AND address = @Address AND port = @Port AND generation = @Generation;
$q$),

-- Reads always return at least one row carrying "Version" (the table version); silo columns are
-- NULL when there is no silo row (the provider tests "StartTime" for that).
('MembershipReadRowKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status",
       m.proxy_port AS "ProxyPort", m.suspect_times AS "SuspectTimes",
       m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
  FROM orleans_membership_version v
  LEFT JOIN orleans_membership m
         ON m.deployment_id = v.deployment_id
        AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
 WHERE v.deployment_id = @DeploymentId;
$q$),

('MembershipReadAllKey', $q$
SELECT v.version AS "Version",
       m.address AS "Address", m.port AS "Port", m.generation AS "Generation",
       m.silo_name AS "SiloName", m.host_name AS "HostName", m.status AS "Status",
       m.proxy_port AS "ProxyPort", m.suspect_times AS "SuspectTimes",
       m.start_time AS "StartTime", m.i_am_alive_time AS "IAmAliveTime"
  FROM orleans_membership_version v
  LEFT JOIN orleans_membership m ON m.deployment_id = v.deployment_id
 WHERE v.deployment_id = @DeploymentId;
$q$),

-- The gateways a client may connect to (@Status is Active).
('GatewaysQueryKey', $q$
SELECT address AS "Address", proxy_port AS "ProxyPort", generation AS "Generation"
  FROM orleans_membership
 WHERE deployment_id = @DeploymentId AND status = @Status AND proxy_port > 0;
$q$),

-- Forget a whole cluster (tests, tooling).
('DeleteMembershipTableEntriesKey', $q$
DELETE FROM orleans_membership WHERE deployment_id = @DeploymentId;
DELETE FROM orleans_membership_version WHERE deployment_id = @DeploymentId;
$q$),

-- Old-style cleanup (required key; 10.4.2 uses it only when CleanupDefunctSiloEntryKey is
-- absent): drop dead silos that last reported alive before @IAmAliveTime.
('CleanupDefunctSiloEntriesKey', $q$
DELETE FROM orleans_membership
 WHERE deployment_id = @DeploymentId AND status = 6 AND i_am_alive_time < @IAmAliveTime;
$q$),

-- Row-by-row cleanup (optional key, preferred by 10.4.2): the provider reads the table, picks
-- the dead silos it considers expired and deletes each one only if the row is still exactly
-- what it read (still dead, same start, heartbeat and suspicions).
('CleanupDefunctSiloEntryKey', $q$
DELETE FROM orleans_membership
 WHERE deployment_id = @DeploymentId
   AND address = @Address AND port = @Port AND generation = @Generation
   AND status = 6
   AND start_time = @StartTime AND i_am_alive_time = @IAmAliveTime
   AND coalesce(suspect_times, '') = coalesce(@SuspectTimes, '');
$q$),

-- Grain persistence -----------------------------------------------------------------------------
-- Zero or one row: "PayloadBinary" (NULL after a clear) and "Version" (the ETag).
('ReadFromStorageKey', $q$
SELECT payload AS "PayloadBinary", version AS "Version"
  FROM orleans_grain_state
 WHERE service_id = @ServiceId
   AND grain_type_hash = @GrainTypeHash AND grain_id_hash = @GrainIdHash
   AND grain_id_n0 = @GrainIdN0 AND grain_id_n1 = @GrainIdN1
   AND grain_type = @GrainTypeString
   AND grain_id_ext IS NOT DISTINCT FROM @GrainIdExtensionString;
$q$),

('WriteToStorageKey', $q$
SELECT orleans_grain_state_write(@ServiceId, @GrainTypeHash, @GrainTypeString, @GrainIdHash,
                                 @GrainIdN0, @GrainIdN1, @GrainIdExtensionString,
                                 @GrainStateVersion, @PayloadBinary) AS "NewGrainStateVersion";
$q$),

('ClearStorageKey', $q$
SELECT orleans_grain_state_clear(@ServiceId, @GrainTypeHash, @GrainTypeString, @GrainIdHash,
                                 @GrainIdN0, @GrainIdN1, @GrainIdExtensionString,
                                 @GrainStateVersion) AS "NewGrainStateVersion";
$q$),

('DeleteStorageKey', $q$
SELECT orleans_grain_state_delete(@ServiceId, @GrainTypeHash, @GrainTypeString, @GrainIdHash,
                                  @GrainIdN0, @GrainIdN1, @GrainIdExtensionString,
                                  @GrainStateVersion) AS "NewGrainStateVersion";
$q$)
ON CONFLICT (QueryKey) DO UPDATE SET QueryText = EXCLUDED.QueryText;

COMMIT;
