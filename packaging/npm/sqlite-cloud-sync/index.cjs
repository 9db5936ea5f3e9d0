// Finds the cloud_sync extension in the package for this platform (an optional dependency that
// npm installs only where its os and cpu match) and loads it into a better-sqlite3 or
// node:sqlite database.
'use strict';

const path = require('node:path');

const PLATFORM_PACKAGE = `sqlite-cloud-sync-${process.platform}-${process.arch}`;

/** The path of the extension's shared library, for hosts that load it themselves. */
function getLoadablePath() {
    let manifest;
    try {
        manifest = require.resolve(`${PLATFORM_PACKAGE}/package.json`);
    } catch {
        throw new Error(
            `sqlite-cloud-sync: no build for ${process.platform}-${process.arch} ` +
                `(${PLATFORM_PACKAGE} is not installed; builds exist for linux-x64 and linux-arm64 ` +
                'with glibc 2.28 or newer)',
        );
    }
    return path.join(path.dirname(manifest), 'cloud_sync.so');
}

/**
 * Loads the extension into `db`: a better-sqlite3 Database, or a node:sqlite DatabaseSync
 * opened with `{ allowExtension: true }`.
 */
function load(db) {
    db.loadExtension(getLoadablePath());
}

module.exports = { getLoadablePath, load };
