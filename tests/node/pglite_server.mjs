// A worker thread serving PGlite (in memory) over its socket server on 127.0.0.1, on a port
// the OS picks. cloud_sync_run() blocks the test's own thread, so the server needs a thread
// of its own. It posts {port} once listening, and answers {sql} messages with {rows} (or
// {error}) read through PGlite directly, not through the socket.
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { parentPort } from 'node:worker_threads';

const db = await PGlite.create();
const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
await server.start();
parentPort.on('message', async ({ sql }) => {
    try {
        parentPort.postMessage({ rows: (await db.query(sql)).rows });
    } catch (e) {
        parentPort.postMessage({ error: String(e) });
    }
});
parentPort.postMessage({ port: Number(server.getServerConn().split(':').pop()) });
