// PGlite's socket server (@electric-sql/pglite-socket, pinned in package.json) as a target:
// a table small enough to go without COPY (in one INSERT, src/sync/export/pack.rs) exports
// exactly; a larger one needs COPY FROM STDIN, which this server does not take, and the job
// must fail at once with an error that says so, not hang. node:sqlite hosts the extension;
// the server runs in a worker thread (pglite_server.mjs), since cloud_sync_run() blocks this one.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

const lib = process.env.CLOUD_SYNC_LIB;
if (!lib) throw new Error('CLOUD_SYNC_LIB is not set: run scripts/test.sh');
process.env.CLOUD_SYNC_ENCRYPTION_KEY ??= randomBytes(32).toString('hex');

// Far below the default, so that a job stuck on the link would fail this test's timing.
const READ_TIMEOUT_S = 5;

/** The next message from the worker, failing on an error it reports or its exit. */
function nextMessage(worker) {
    return new Promise((resolve, reject) => {
        const exit = (code) => reject(new Error(`the PGlite worker exited (${code})`));
        worker.once('error', reject);
        worker.once('exit', exit);
        worker.once('message', (message) => {
            worker.off('error', reject);
            worker.off('exit', exit);
            if (message.error) reject(new Error(message.error));
            else resolve(message);
        });
    });
}

test('PGlite: exact without COPY; a COPY fails at once, naming the limitation', { timeout: 120_000 }, async (t) => {
    const worker = new Worker(new URL('./pglite_server.mjs', import.meta.url));
    // Whatever fails, the worker neither outlives the test nor keeps the process alive.
    worker.unref();
    const dir = mkdtempSync(join(tmpdir(), 'cloud_sync_pglite_'));
    const db = new DatabaseSync(join(dir, 'app.db'), { allowExtension: true });
    t.after(async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
        await worker.terminate();
    });
    db.loadExtension(lib);
    const { port } = await nextMessage(worker);
    const remote = async (sql) => (await (worker.postMessage({ sql }), nextMessage(worker))).rows;
    const json = (sql, ...params) => JSON.parse(Object.values(db.prepare(sql).get(...params))[0]);
    const options = (extra) => JSON.stringify({ read_timeout_s: READ_TIMEOUT_S, ...extra });
    // The server has no TLS; connect_timeout bounds a connect to a server that stopped answering.
    db.prepare('SELECT cloud_sync_save(?, ?)').get(
        'pglite', `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable&connect_timeout=5`);

    db.exec(`CREATE TABLE small (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, data BLOB, note TEXT);
             INSERT INTO small VALUES (1, 'tea, "green"', 3.5, x'00ff10', NULL),
                                      (2, 'café ☕', -0.25, x'', 'it''s'),
                                      (3, '', 1e-7, NULL, 'line
break');
             CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO big SELECT i, 'row ' || i FROM n;`);

    await t.test('a table sent without COPY exports exactly', async () => {
        const only = options({ tables: ['small'] });
        const dry = json('SELECT cloud_sync_run(cloud_sync_export(?, 1, ?))', 'pglite', only);
        assert.equal(dry.status, 'succeeded', dry.error);
        const full = json('SELECT cloud_sync_run(cloud_sync_export(?, 0, ?))', 'pglite',
            options({ tables: ['small'], confirm: dry.id }));
        assert.equal(full.status, 'succeeded', full.error);
        assert.equal(full.summary.totals.inserts, 3);
        const rows = await remote(`SELECT id::text, name, price::text, encode(data, 'hex') AS data, note
                                     FROM public.small ORDER BY id`);
        assert.deepEqual(rows, [
            { id: '1', name: 'tea, "green"', price: '3.5', data: '00ff10', note: null },
            { id: '2', name: 'café ☕', price: '-0.25', data: '', note: "it's" },
            { id: '3', name: '', price: '1e-07', data: null, note: 'line\nbreak' },
        ]);
    });

    await t.test('a table that needs COPY fails at once, naming the limitation', () => {
        const started = Date.now();
        const outcome = json('SELECT cloud_sync_run(cloud_sync_export(?, 1, ?))', 'pglite',
            options({ tables: ['big'], max_attempts: 1 }));
        const took = (Date.now() - started) / 1000;
        assert.equal(outcome.status, 'failed', JSON.stringify(outcome));
        assert.ok(took < READ_TIMEOUT_S, `the failed attempt took ${took} s`);
        // The server either reports the end of the COPY data (then the job is final) or
        // closes the connection first, depending on which the client reads first.
        assert.match(outcome.error, /^table big: COPY failed( to start)?: /);
        assert.match(outcome.error, /does not take COPY FROM STDIN/);
        assert.match(outcome.error, /PGlite's socket server/);
    });
});
