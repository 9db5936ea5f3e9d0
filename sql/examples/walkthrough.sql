-- The README's walk-through, run by scripts/demo.sh and scripts/test.sh through the sqlite3
-- shell. The caller sets @url (.parameter set @url '...') and loads the extension.
.bail on
.mode line

-- What is loaded, and whether a key is configured (never the key itself).
SELECT cloud_sync_version() AS version,
       json_extract(cloud_sync_debug(), '$.encryption_key.configured') AS key_configured;

-- Save the connection string: validated, encrypted, stored; returns the connection's id.
SELECT cloud_sync_save('demo', @url) AS connection_id;

-- Only the redacted form is ever readable.
SELECT id, name, display FROM cloud_sync_connections WHERE name = 'demo';

-- Connect, run a trivial query, report TLS, verification and round-trip time.
SELECT cloud_sync_test('demo') AS test;

-- Some application data.
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, added_at DATETIME);
INSERT OR IGNORE INTO items VALUES
  (1, 'tea', 3.5, '2026-11-26 10:00:00'),
  (2, 'coffee', 4.25, '2026-11-26 10:05:00'),
  (3, 'water', NULL, '2026-11-26 10:10:00');

-- Track it: from now on every change is recorded, so exports after the first ship only those.
SELECT json_extract(cloud_sync_track('items'), '$.status') AS tracking;

-- A dry run (the default): queue it, run it now. Nothing is written remotely.
SELECT json_extract(cloud_sync_run(cloud_sync_export('demo')), '$.status') AS dry_run;

-- Its preview: what the export would do, per table.
.mode box
SELECT * FROM cloud_sync_job_tables((SELECT max(id) FROM cloud_sync_jobs));
.mode line

-- The export itself confirms that dry run.
SELECT json_extract(cloud_sync_run(cloud_sync_export('demo', 0, json_object('confirm',
  (SELECT max(id) FROM cloud_sync_jobs WHERE dry_run = 1 AND status = 'succeeded')))),
  '$.status') AS export;

-- The job history and the export's log.
.mode box
SELECT id, kind, dry_run, status, duration_ms, rows_done, error FROM cloud_sync_jobs_vtab;
SELECT time, level, table_name, message FROM cloud_sync_job_log((SELECT max(id) FROM cloud_sync_jobs));
