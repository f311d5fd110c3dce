// SQL assertions on the SQLite database that httpd's children write.
// As root the sqlite3 CLI runs as www-data: a -wal/-shm file it created as root would lock the
// children (www-data) out of their own database.
import { DEFAULT_TIMEOUT_MS, isRoot, run } from './util.mjs';

const FIELD_SEP = '\x1f';
const BUSY_TIMEOUT_MS = 5000;

function sqliteArgv(dbFile, sql, extraArgs) {
  const args = ['-batch', '-bail', '-cmd', `.timeout ${BUSY_TIMEOUT_MS}`, ...extraArgs, dbFile, sql];
  return isRoot() ? ['runuser', ['-u', 'www-data', '--', 'sqlite3', ...args]] : ['sqlite3', args];
}

/** Runs SQL with the sqlite3 CLI; resolves to its trimmed output (fields split by '|'). */
export async function sqlite(dbFile, sql, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const { stdout } = await run(...sqliteArgv(dbFile, sql, []), { timeoutMs });
  return stdout.trim();
}

/** Runs a query and returns its rows as arrays of strings (NULL becomes ''). */
export async function sqliteRows(dbFile, sql, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const { stdout } = await run(...sqliteArgv(dbFile, sql, ['-separator', FIELD_SEP]), { timeoutMs });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(FIELD_SEP));
}
