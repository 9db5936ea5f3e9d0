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
