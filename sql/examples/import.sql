-- The way back, run by scripts/demo.sh and scripts/test.sh after walkthrough.sql and an edit
-- made in Postgres with psql (item 1 repriced, item 2's price set to NULL, item 4 added).
.bail on
.mode line

-- A dry run (the default, strategy skip) previews the import and changes nothing.
SELECT json_extract(cloud_sync_run(cloud_sync_import('demo')), '$.status') AS dry_run_import;
.mode box
SELECT * FROM cloud_sync_job_tables((SELECT max(id) FROM cloud_sync_jobs));
.mode line

-- Merge: take the remote values that are not NULL, keep the local ones where the remote has NULL.
SELECT json_extract(cloud_sync_run(cloud_sync_import('demo', 0, 'merge')), '$.status') AS merge_import;
.mode box
SELECT * FROM cloud_sync_job_tables((SELECT max(id) FROM cloud_sync_jobs));
SELECT * FROM items ORDER BY id;
