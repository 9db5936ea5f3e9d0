-- cloud_sync's own tables. Applied on every load, idempotently; the version lives in
-- cloud_sync_meta, never in PRAGMA user_version (that belongs to the application).
-- Timestamps are ISO-8601 UTC text with milliseconds.

CREATE TABLE IF NOT EXISTS cloud_sync_meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- Saved connections. The connection string is stored only encrypted (see README, "Security
-- model"); `display` is the same string with the password replaced by ***.
CREATE TABLE IF NOT EXISTS cloud_sync_connections (
  id                          INTEGER PRIMARY KEY,
  name                        TEXT NOT NULL UNIQUE,
  connection_string_encrypted TEXT NOT NULL,
  display                     TEXT NOT NULL,
  created_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  -- Schema version 4 (the audit's "who"; NULL where no actor was named, and on rows saved
  -- before version 4): who saved the connection first and last.
  created_by                  TEXT,
  updated_by                  TEXT,
  -- The last cloud_sync_test of this saved connection: when, by whom, and its JSON result
  -- (or {"ok": false, "error": ...}).
  last_tested_at              TEXT,
  last_tested_by              TEXT,
  last_test                   TEXT
);

-- Every save, replacement and deletion of a saved connection, with who did it (schema
-- version 4): a deleted connection's row is gone, its history stays here.
CREATE TABLE IF NOT EXISTS cloud_sync_connection_events (
  id              INTEGER PRIMARY KEY,
  at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  connection_name TEXT NOT NULL,
  action          TEXT NOT NULL CHECK (action IN ('created', 'replaced', 'deleted')),
  actor           TEXT
);

-- One row per job (an export or an import), its whole life: queued -> running -> succeeded |
-- failed | cancelled, with retries (attempts, next_attempt_at) in between.
CREATE TABLE IF NOT EXISTS cloud_sync_jobs (
  id               INTEGER PRIMARY KEY,
  -- NULL once the connection is deleted; connection_name keeps the history readable.
  connection_id    INTEGER REFERENCES cloud_sync_connections(id) ON DELETE SET NULL,
  connection_name  TEXT NOT NULL,
  kind             TEXT NOT NULL CHECK (kind IN ('export', 'import')),
  dry_run          INTEGER NOT NULL DEFAULT 1 CHECK (dry_run IN (0, 1)),
  options          TEXT NOT NULL DEFAULT '{}',
  status           TEXT NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  next_attempt_at  TEXT,
  created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at       TEXT,
  finished_at      TEXT,
  -- Who holds a running job (process and worker), so a claim is atomic and a crashed
  -- runner's job can be found and recovered.
  claimed_by       TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
  rows_total       INTEGER,
  rows_done        INTEGER NOT NULL DEFAULT 0,
  summary          TEXT,
  error            TEXT,
  -- Who asked for the job (schema version 4): option requested_by, else the actor of the
  -- connection that queued it, else NULL.
  requested_by     TEXT
);
CREATE INDEX IF NOT EXISTS cloud_sync_jobs_due ON cloud_sync_jobs (status, next_attempt_at);

-- Every attempt of a job, for the audit report.
CREATE TABLE IF NOT EXISTS cloud_sync_job_attempts (
  job_id      INTEGER NOT NULL REFERENCES cloud_sync_jobs(id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  outcome     TEXT CHECK (outcome IN ('succeeded', 'failed', 'cancelled')),
  error       TEXT,
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

-- Step-by-step log of each job. Never holds a secret.
CREATE TABLE IF NOT EXISTS cloud_sync_job_logs (
  id         INTEGER PRIMARY KEY,
  job_id     INTEGER NOT NULL REFERENCES cloud_sync_jobs(id) ON DELETE CASCADE,
  attempt    INTEGER NOT NULL DEFAULT 0,
  at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  level      TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
  table_name TEXT,
  message    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_sync_job_logs_job ON cloud_sync_job_logs (job_id, id);

-- Change tracking (schema version 2). A tracked table has three triggers that append the key
-- of every changed row here; exports read the changes after their watermark. See README,
-- "Incremental export".
CREATE TABLE IF NOT EXISTS cloud_sync_tracked_tables (
  -- AUTOINCREMENT: an id is never reused, so a watermark of an earlier tracking of the same
  -- table can never pass for one of the current tracking.
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name  TEXT NOT NULL UNIQUE,
  -- The key and the columns when tracking began (JSON); a table altered since is refused.
  key_columns TEXT NOT NULL,
  columns     TEXT NOT NULL,
  tracked_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Written by the triggers, so by every writer, with or without cloud_sync loaded.
-- AUTOINCREMENT: seq only grows, even after pruning removed the highest rows; SQLite has one
-- writer at a time, so a snapshot holding seq N holds every change up to N.
CREATE TABLE IF NOT EXISTS cloud_sync_changes (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  tracking_id INTEGER NOT NULL,
  -- quote() of each key column, joined by ',': exact for every storage class.
  key         TEXT NOT NULL,
  kind        TEXT NOT NULL
);

-- The last change exported to each connection and remote schema, per tracked table.
CREATE TABLE IF NOT EXISTS cloud_sync_watermarks (
  tracking_id   INTEGER NOT NULL,
  connection_id INTEGER NOT NULL,
  schema        TEXT NOT NULL,
  seq           INTEGER NOT NULL,
  exported_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  job_id        INTEGER,
  PRIMARY KEY (tracking_id, connection_id, schema)
) WITHOUT ROWID;

DROP VIEW IF EXISTS cloud_sync_tracked;
CREATE VIEW cloud_sync_tracked AS
SELECT t.table_name,
       t.id AS tracking_id,
       t.key_columns AS key,
       t.tracked_at,
       (SELECT count(*) FROM cloud_sync_changes c WHERE c.tracking_id = t.id) AS pending_changes,
       (SELECT json_group_array(json_object(
                 'connection', coalesce(n.name, w.connection_id),
                 'schema', w.schema,
                 'exported_through', w.seq,
                 'exported_at', w.exported_at,
                 'pending', (SELECT count(*) FROM cloud_sync_changes c
                             WHERE c.tracking_id = t.id AND c.seq > w.seq)))
        FROM cloud_sync_watermarks w
        LEFT JOIN cloud_sync_connections n ON n.id = w.connection_id
        WHERE w.tracking_id = t.id) AS exports
FROM cloud_sync_tracked_tables t;

-- Schedules (schema version 3): jobs the worker queues by itself, every period and/or once
-- local changes go quiet. One row per schedule: its definition, then what its last run did.
-- See docs/guide.md, "Continuous sync".
CREATE TABLE IF NOT EXISTS cloud_sync_schedule_entries (
  name            TEXT PRIMARY KEY NOT NULL,
  connection_name TEXT NOT NULL,
  kind            TEXT NOT NULL CHECK (kind IN ('export', 'import')),
  -- The options of the job each run queues (JSON); an export's hold "mode": "incremental".
  options         TEXT NOT NULL,
  every_s         INTEGER CHECK (every_s >= 1),
  on_change       INTEGER NOT NULL DEFAULT 0 CHECK (on_change IN (0, 1)),
  debounce_ms     INTEGER CHECK (debounce_ms >= 0),
  created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  -- The earliest the next run may start (an on_change run also waits for quiet changes).
  next_run_at     TEXT NOT NULL,
  last_run_at     TEXT,
  -- 'job': the run queued last_job_id; 'nothing to send': it found no local change and queued
  -- nothing; 'refused': a check failed (last_error says which) and it queued nothing.
  last_outcome    TEXT CHECK (last_outcome IN ('job', 'nothing to send', 'refused')),
  last_error      TEXT,
  last_job_id     INTEGER,
  runs            INTEGER NOT NULL DEFAULT 0,
  -- Runs not started because the last job was still queued or running.
  skipped_runs    INTEGER NOT NULL DEFAULT 0,
  last_skipped_at TEXT,
  -- Who created or last replaced it (schema version 4): its jobs are requested by them.
  created_by      TEXT
) WITHOUT ROWID;

-- What a schedule's last run did: for a run that queued a job, that job's status now.
DROP VIEW IF EXISTS cloud_sync_schedules;
CREATE VIEW cloud_sync_schedules AS
SELECT s.name, s.connection_name AS connection, s.kind, s.every_s, s.on_change, s.debounce_ms,
       s.options, s.created_at, s.updated_at, s.last_run_at,
       CASE WHEN s.last_outcome = 'job' THEN coalesce(j.status, 'job deleted')
            ELSE s.last_outcome END AS last_outcome,
       CASE WHEN s.last_outcome = 'job' THEN j.error ELSE s.last_error END AS last_error,
       s.last_job_id, s.next_run_at, s.runs, s.skipped_runs, s.last_skipped_at, s.created_by
FROM cloud_sync_schedule_entries s
LEFT JOIN cloud_sync_jobs j ON j.id = s.last_job_id;
