// node:sqlite (Node >= 22.13) loads the extension and runs the walk-through. It binds every JS
// number as REAL and booleans as the integers 0 and 1, so its flags are passed as `false`.
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { walkThrough } from './walkthrough.mjs';

test('node:sqlite runs the walk-through', { timeout: 300_000 }, async (t) => {
    await walkThrough(t, {
        name: 'node_sqlite',
        no: false,
        open(file) {
            const db = new DatabaseSync(file, { allowExtension: true });
            db.loadExtension(process.env.CLOUD_SYNC_LIB);
            return db;
        },
    });
});
