/** The path of the extension's shared library, for hosts that load it themselves. */
export declare function getLoadablePath(): string;

/**
 * Loads the extension into `db`: a better-sqlite3 Database, or a node:sqlite DatabaseSync
 * opened with `{ allowExtension: true }`.
 */
export declare function load(db: { loadExtension(file: string, entryPoint?: string): unknown }): void;
