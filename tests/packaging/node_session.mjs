// A user's first session with the installed npm packages, in a fresh Node project (copied
// there by tests/packaging/run.sh, so `sqlite-cloud-sync` resolves from that project):
//
//   node node_session.mjs VERSION node:sqlite|better-sqlite3
//
// load, version, save a connection, test it over TLS (verify-full against the test CA),
// dry-run export, confirmed export, report. Needs the CLOUD_SYNC_TEST_* variables of
// scripts/lib/pg.sh and CLOUD_SYNC_ENCRYPTION_KEY. Prints one line per step and
// `session <host>: ok`; any failure throws.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLoadablePath, load } from 'sqlite-cloud-sync';

const [version, host] = process.argv.slice(2);
const env = process.env;

function pgUrl() {
    const password = encodeURIComponent(env.CLOUD_SYNC_TEST_PG_PASSWORD);
    return (
        `postgresql://${env.CLOUD_SYNC_TEST_PG_USER}:${password}@${env.CLOUD_SYNC_TEST_PG_HOST}:` +
        `${env.CLOUD_SYNC_TEST_PG_PORT}/${env.CLOUD_SYNC_TEST_PG_DB}` +
        `?sslmode=verify-full&sslrootcert=${env.CLOUD_SYNC_TEST_PG_CA}`
    );
}

// Each host opens `file`, loads the extension with load(db), and gives `one` (the first value
// a query returns) and `exec` (statements that return nothing).
const hosts = {
    async 'node:sqlite'(file) {
        const { DatabaseSync } = await import('node:sqlite');
        const db = new DatabaseSync(file, { allowExtension: true });
        load(db);
        return {
            one: (sql, ...args) => Object.values(db.prepare(sql).get(...args))[0],
            exec: (sql) => db.exec(sql),
        };
    },
    async 'better-sqlite3'(file) {
        const Database = createRequire(import.meta.url)('better-sqlite3');
        const db = new Database(file);
        load(db);
        return {
            one: (sql, ...args) => db.prepare(sql).pluck().get(...args),
            exec: (sql) => db.exec(sql),
        };
    },
};

const dir = mkdtempSync(join(tmpdir(), 'cloud_sync_pkg_'));
try {
    assert.ok(existsSync(getLoadablePath()), getLoadablePath());
    const { one, exec } = await hosts[host](join(dir, 'app.db'));
    const schema = `pkg_${host.replace(/[^a-z0-9]/g, '_')}`;
    assert.equal(one('SELECT cloud_sync_version()'), version);
    console.log(`${host}: loaded cloud_sync ${version}`);

    assert.equal(typeof one("SELECT cloud_sync_save('pkg', ?)", pgUrl()), 'number');
    const tested = JSON.parse(one("SELECT cloud_sync_test('pkg')"));
    assert.ok(tested.ok && tested.tls && tested.verified, JSON.stringify(tested));
    console.log(`${host}: saved and tested a verify-full connection`);

    exec(
        'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);' +
            "INSERT INTO items VALUES (1, 'tea', 3.5), (2, 'coffee', 4.25);",
    );
    const options = { schema, tables: ['items'] };
    const dry = JSON.parse(
        one("SELECT cloud_sync_run(cloud_sync_export('pkg', 1, ?))", JSON.stringify(options)),
    );
    assert.equal(dry.status, 'succeeded', JSON.stringify(dry));
    const confirmed = JSON.stringify({ ...options, confirm: dry.id });
    const done = JSON.parse(one("SELECT cloud_sync_run(cloud_sync_export('pkg', 0, ?))", confirmed));
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    console.log(`${host}: dry run ${dry.id} and export ${done.id} succeeded`);

    const report = one("SELECT cloud_sync_report(?, 'markdown')", done.id);
    assert.ok(report.includes('succeeded') && report.includes('items'), report);
    assert.ok(!report.includes(env.CLOUD_SYNC_TEST_PG_PASSWORD));
    console.log(`${host}: report of job ${done.id}: ${report.split('\n').length} lines of markdown`);
    console.log(`session ${host}: ok`);
} finally {
    rmSync(dir, { recursive: true, force: true });
}
