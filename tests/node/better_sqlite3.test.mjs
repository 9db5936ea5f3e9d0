// better-sqlite3 (v12, built against the Node that runs the tests) loads the extension and runs
// the walk-through. It binds every JS number as REAL and refuses booleans itself.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { walkThrough } from './walkthrough.mjs';

const Database = createRequire(import.meta.url)('better-sqlite3');

test('better-sqlite3 runs the walk-through', { timeout: 300_000 }, async (t) => {
    await walkThrough(t, {
        name: 'node_better_sqlite3',
        no: 0,
        open(file) {
            const db = new Database(file);
            db.loadExtension(process.env.CLOUD_SYNC_LIB);
            return db;
        },
    });
});

test('better-sqlite3 refuses a boolean before the extension sees it: users pass 0 or 1', () => {
    const db = new Database(':memory:');
    try {
        assert.throws(() => db.prepare('SELECT ?').get(false), TypeError);
    } finally {
        db.close();
    }
});
