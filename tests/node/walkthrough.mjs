// The README's walk-through (sql/examples/*.sql) from a Node host, with the values a Node
// application binds: job ids, flags and counts as plain JS numbers (both hosts bind every number
// as REAL), options as JSON.stringify'd objects or built in SQL with json_object from bound
// numbers. Shared by better_sqlite3.test.mjs and node_sqlite.test.mjs: each host gets its own
// remote database, and every value read and every error is checked for the password.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const examples = new URL('../../sql/examples/', import.meta.url).pathname;

function required(name) {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run scripts/test.sh`);
    return value;
}

const lib = required('CLOUD_SYNC_LIB');
const password = required('CLOUD_SYNC_TEST_PG_PASSWORD');
const secrets = [password, encodeURIComponent(password)];
// The extension reads its key from the process environment when it loads.
process.env.CLOUD_SYNC_ENCRYPTION_KEY ??= randomBytes(32).toString('hex');

/** Fails if `text` holds the password, plain or percent-encoded. */
export function assertNoSecret(text) {
    for (const secret of secrets) {
        assert.ok(!String(text).includes(secret), `the password appears in: ${String(text).slice(0, 200)}`);
    }
}

/** psql as the superuser on `database` (over the server's unix socket: no password). */
function psql(database, ...args) {
    const conninfo = required('CLOUD_SYNC_TEST_PG_ADMIN_URL').replace(/dbname=\S+/, `dbname=${database}`);
    return execFileSync(join(required('CLOUD_SYNC_TEST_PG_BIN'), 'psql'),
        [conninfo, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args], {
            encoding: 'utf8',
            env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' },
        });
}

/** A fresh remote database owned by the test user, and the verified URL to it. */
function remoteDatabase(database) {
    psql('postgres', '-c', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    psql('postgres', '-c', `CREATE DATABASE ${database} OWNER ${required('CLOUD_SYNC_TEST_PG_USER')}`);
    const user = required('CLOUD_SYNC_TEST_PG_USER');
    const port = required('CLOUD_SYNC_TEST_PG_PORT');
    const ca = encodeURIComponent(required('CLOUD_SYNC_TEST_PG_CA'));
    return `postgresql://${user}:${encodeURIComponent(password)}@localhost:${port}/${database}` +
        `?sslmode=verify-full&sslrootcert=${ca}`;
}

/** Rows read through `db` (either host's API), with the password check on everything read. */
class Session {
    constructor(db) {
        this.db = db;
    }
    get(sql, ...params) {
        const row = this.db.prepare(sql).get(...params);
        assertNoSecret(JSON.stringify(row));
        return { ...row };
    }
    all(sql, ...params) {
        const rows = this.db.prepare(sql).all(...params).map((row) => ({ ...row }));
        assertNoSecret(JSON.stringify(rows));
        return rows;
    }
    /** The JSON that `sql`'s one column returns, parsed. */
    json(sql, ...params) {
        return JSON.parse(Object.values(this.get(sql, ...params))[0]);
    }
    /** Runs job `id` (a JS number) and returns its outcome. */
    run(id) {
        return this.json('SELECT cloud_sync_run(?)', id);
    }
    /** `sql` must fail with an error matching `pattern` that holds no password. */
    refuses(pattern, sql, ...params) {
        assert.throws(() => this.db.prepare(sql).get(...params), (error) => {
            assertNoSecret(error.message);
            assert.match(error.message, pattern);
            return true;
        });
    }
}

/**
 * The walk-through as subtests of `t`. `host` has `name` (also the remote database's name),
 * `open(file)` (a connection with the extension loaded) and `no`: what its users pass for a
 * false flag (0, or `false` where the host binds booleans).
 */
export async function walkThrough(t, host) {
    const dir = mkdtempSync(join(tmpdir(), `cloud_sync_${host.name}_`));
    const url = remoteDatabase(host.name);
    const remoteItems = () => psql(host.name, '-c', 'SELECT id, name, price FROM items ORDER BY id');
    const db = host.open(join(dir, 'app.db'));
    const s = new Session(db);
    let dryRun;
    t.after(() => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
    });

    await t.test('loads, with a key configured', () => {
        const row = s.get(`SELECT cloud_sync_version() AS version,
            json_extract(cloud_sync_debug(), '$.encryption_key.configured') AS key_configured`);
        assert.match(row.version, /^\d+\.\d+\.\d+/);
        assert.equal(row.key_configured, 1);
    });

    await t.test('saves a connection and shows it redacted', () => {
        const { id } = s.get('SELECT cloud_sync_save(?, ?) AS id', 'demo', url);
        assert.equal(id, 1);
        const { display } = s.get('SELECT display FROM cloud_sync_connections WHERE id = ?', id);
        assert.match(display, /:\*\*\*@localhost/);
        const test = s.json('SELECT cloud_sync_test(?)', 'demo');
        assert.equal(test.ok, true);
        assert.equal(test.verified, true);
    });

    await t.test('tracks the application table', () => {
        db.exec(`CREATE TABLE items (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, added_at DATETIME)`);
        const insert = db.prepare('INSERT INTO items VALUES (?, ?, ?, ?)');
        insert.run(1, 'tea', 3.5, '2026-11-26 10:00:00');
        insert.run(2, 'coffee', 4.25, '2026-11-26 10:05:00');
        insert.run(3, 'water', null, '2026-11-26 10:10:00');
        assert.equal(s.json('SELECT cloud_sync_track(?)', 'items').status, 'tracked');
    });

    await t.test('a dry run, run by a job id bound as a JS number', () => {
        dryRun = s.get('SELECT cloud_sync_export(?) AS id', 'demo').id;
        // The premise: the host binds the number as REAL.
        assert.equal(s.get('SELECT typeof(?) AS type', dryRun).type, 'real');
        const outcome = s.run(dryRun);
        assert.equal(outcome.status, 'succeeded', outcome.error);
        assert.deepEqual(s.all('SELECT table_name, inserts FROM cloud_sync_job_tables(?)', dryRun),
            [{ table_name: 'items', inserts: 3 }]);
        // Its remote transaction was rolled back: not even the table exists.
        assert.equal(psql(host.name, '-c', "SELECT to_regclass('public.items') IS NULL"), 't\n');
    });

    await t.test('the export confirms it, options from JSON.stringify', () => {
        const id = s.get('SELECT cloud_sync_export(?, ?, ?) AS id', 'demo', host.no,
            JSON.stringify({ confirm: dryRun })).id;
        const outcome = s.run(id);
        assert.equal(outcome.status, 'succeeded', outcome.error);
        assert.deepEqual(s.all('SELECT dry_run, status FROM cloud_sync_jobs_vtab WHERE id = ?', id),
            [{ dry_run: 0, status: 'succeeded' }]);
        const log = s.all('SELECT message FROM cloud_sync_job_log(?)', id).map((row) => row.message);
        assert.ok(log.includes('committed'), log.join('\n'));
        assert.equal(remoteItems(), '1|tea|3.5\n2|coffee|4.25\n3|water|\n');
    });

    await t.test('imports a remote edit: dry run, then merge', () => {
        psql(host.name, '-f', join(examples, 'remote_edit.sql'));
        const preview = s.get('SELECT cloud_sync_import(?) AS id', 'demo').id;
        assert.equal(s.run(preview).status, 'succeeded');
        assert.deepEqual(
            s.all('SELECT inserts, updates, unchanged, skipped FROM cloud_sync_job_tables(?)', preview),
            [{ inserts: 1, updates: 0, unchanged: 1, skipped: 2 }]);
        const merge = s.get('SELECT cloud_sync_import(?, ?, ?) AS id', 'demo', host.no, 'merge').id;
        const outcome = s.run(merge);
        assert.equal(outcome.status, 'succeeded', outcome.error);
        assert.deepEqual(s.all('SELECT id, name, price FROM items ORDER BY id'), [
            { id: 1, name: 'tea', price: 3.75 },
            { id: 2, name: 'coffee', price: 4.25 },
            { id: 3, name: 'water', price: null },
            { id: 4, name: 'juice', price: 2.5 },
        ]);
    });

    await t.test('an incremental export, confirmed with json_object from a bound number', () => {
        db.prepare('DELETE FROM items WHERE id = ?').run(3);
        const preview = s.get('SELECT cloud_sync_export(?) AS id', 'demo').id;
        assert.equal(s.run(preview).status, 'succeeded');
        const id = s.get("SELECT cloud_sync_export(?, ?, json_object('confirm', ?)) AS id",
            'demo', host.no, preview).id;
        const outcome = s.run(id);
        assert.equal(outcome.status, 'succeeded', outcome.error);
        const [table] = outcome.summary.tables;
        assert.equal(table.mode, 'incremental');
        assert.equal(table.source_rows, 3);
        assert.equal(table.updates, 0);
        assert.equal(table.deletes, 1);
        assert.deepEqual(s.all('SELECT table_name, pending_changes FROM cloud_sync_tracked'),
            [{ table_name: 'items', pending_changes: 0 }]);
        assert.equal(remoteItems(), '1|tea|3.75\n2|coffee|\n4|juice|2.5\n');
    });

    await t.test('reports a job by a JS number, in every format', () => {
        const report = s.json('SELECT cloud_sync_report(?)', dryRun);
        assert.equal(report.job.id, dryRun);
        assert.match(s.get("SELECT cloud_sync_report(?, 'markdown') AS r", dryRun).r, /succeeded/);
        assert.match(s.get("SELECT cloud_sync_report(?, 'csv') AS r", dryRun).r, /^table_name,/);
    });

    await t.test('cancel, retry and run_jobs take JS numbers', () => {
        const first = s.get('SELECT cloud_sync_export(?) AS id', 'demo').id;
        const second = s.get('SELECT cloud_sync_export(?) AS id', 'demo').id;
        assert.equal(s.json('SELECT cloud_sync_cancel(?)', first).status, 'cancelled');
        s.json('SELECT cloud_sync_retry(?)', first);
        const one = s.json('SELECT cloud_sync_run_jobs(?)', 1);
        assert.equal(one.ran, 1);
        const rest = s.json('SELECT cloud_sync_run_jobs(?)', 5);
        assert.equal(rest.ran, 1);
        assert.deepEqual(
            s.all('SELECT status FROM cloud_sync_jobs WHERE id IN (?, ?)', first, second),
            [{ status: 'succeeded' }, { status: 'succeeded' }]);
    });

    await t.test('the worker runs a job, poll interval from a bound number', async () => {
        const started = s.json("SELECT cloud_sync_worker_start(json_object('poll_interval_ms', ?))", 100);
        assert.equal(started.running, true);
        assert.equal(started.poll_interval_ms, 100);
        const id = s.get('SELECT cloud_sync_export(?) AS id', 'demo').id;
        let status;
        for (let waited = 0; waited < 30_000; waited += 100) {
            ({ status } = s.get('SELECT status FROM cloud_sync_jobs_vtab WHERE id = ?', id));
            if (status !== 'queued' && status !== 'running') break;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(status, 'succeeded');
        assert.equal(s.json('SELECT cloud_sync_worker_stop()').stopped, true);
    });

    await t.test('refuses what is not an integer, and echoes no password', () => {
        s.refuses(/1\.5/, 'SELECT cloud_sync_run(?)', 1.5);
        s.refuses(/Infinity|inf/i, 'SELECT cloud_sync_report(?)', Infinity);
        s.refuses(/confirm/, 'SELECT cloud_sync_export(?, ?, ?)', 'demo', host.no,
            JSON.stringify({ confirm: 0.5 }));
        s.refuses(/./, 'SELECT cloud_sync_test(?)', `postgresql://u:${password}`);
        s.refuses(/./, 'SELECT cloud_sync_save(?, ?)', 'bad', `postgresql://u:${password}@`);
    });
}
