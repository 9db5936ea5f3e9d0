-- After schedule.sql, once the change is on the remote: stop the worker (it finishes the job
-- in progress first), then what the schedule did and what its job shipped.
SELECT json_extract(cloud_sync_worker_stop(), '$.stopped') AS worker_stopped;
.mode box
SELECT name, kind, last_outcome, last_job_id FROM cloud_sync_schedules;
SELECT json_extract(t.value, '$.table') AS table_name, json_extract(t.value, '$.mode') AS mode,
       json_extract(t.value, '$.source_rows') AS changed_keys,
       json_extract(t.value, '$.inserts') AS inserts
FROM cloud_sync_schedules s, cloud_sync_jobs j, json_each(j.summary, '$.tables') t
WHERE s.name = 'live' AND j.id = s.last_job_id;
