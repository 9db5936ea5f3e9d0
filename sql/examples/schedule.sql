-- Continuous sync, run by scripts/demo.sh and scripts/test.sh after incremental.sql: a schedule
-- has the worker export every local change within a few seconds, with no call to export.
-- The caller waits until the change is on the remote, then feeds schedule_stop.sql to the same
-- sqlite3 process (the worker is a thread of it).
.bail on
.mode line
-- The worker writes the database too: wait for it rather than fail.
.timeout 5000

-- Once local changes have been quiet for 200 ms, at most once a second: an incremental export.
SELECT json_extract(cloud_sync_schedule('live', '{"connection": "demo", "kind": "export",
  "on_change": true, "debounce_ms": 200, "every_s": 1}'), '$.kind') AS scheduled;
SELECT json_extract(cloud_sync_worker_start(), '$.running') AS worker_running;

-- A local change, and nothing else.
INSERT INTO items VALUES (5, 'cocoa', 3.2, '2026-11-26 12:00:00');
