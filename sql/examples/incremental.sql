-- Incremental export, run by scripts/demo.sh and scripts/test.sh after import.sql. `items` was
-- tracked before its first export (walkthrough.sql), so this export ships only what changed
-- since: the rows the merge import wrote, and a local delete.
.bail on
.mode line

DELETE FROM items WHERE id = 3;
SELECT table_name, pending_changes FROM cloud_sync_tracked;

-- The dry run shows the incremental plan; the export confirms it.
SELECT json_extract(cloud_sync_run(cloud_sync_export('demo')), '$.status') AS incremental_dry_run;
SELECT json_extract(cloud_sync_run(cloud_sync_export('demo', 0, json_object('confirm',
  (SELECT max(id) FROM cloud_sync_jobs WHERE dry_run = 1 AND status = 'succeeded')))),
  '$.status') AS incremental_export;
.mode box
SELECT json_extract(t.value, '$.table') AS table_name, json_extract(t.value, '$.mode') AS mode,
       json_extract(t.value, '$.source_rows') AS changed_keys,
       json_extract(t.value, '$.updates') AS updates, json_extract(t.value, '$.deletes') AS deletes
FROM cloud_sync_jobs j, json_each(j.summary, '$.tables') t
WHERE j.id = (SELECT max(id) FROM cloud_sync_jobs);
SELECT table_name, pending_changes, exports FROM cloud_sync_tracked;
