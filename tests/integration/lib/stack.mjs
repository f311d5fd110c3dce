// The whole system under test: [PostgreSQL] + FHIR backend + httpd (mod_fhirsub, mod_proxy).
// One stop() tears down in reverse order, also after a partial start.
import path from 'node:path';
import { startBackend } from './backend.mjs';
import { startHttpd } from './httpd.mjs';
import { psqlRows, startPostgres } from './pg.mjs';
import { sqliteRows } from './sqlite.mjs';
import { makeTempDir, removeDir } from './util.mjs';

export const DEFAULT_FHIR_PATH = '/fhir/R4';

function dbKind(db) {
  if (db !== 'sqlite3' && db !== 'pgsql') throw new Error(`FHIRSUB_DB must be sqlite3 or pgsql, not ${db}`);
  return db;
}

function resolveLocations(opts, ctx) {
  if (typeof opts.locations === 'function') return opts.locations(ctx);
  if (opts.locations) return opts.locations;
  return [{ path: ctx.fhirPath, directives: opts.fhirDirectives ?? [], proxyTo: ctx.backend.url }];
}

/**
 * Options (all optional):
 *   db            'sqlite3' | 'pgsql' (default: $FHIRSUB_DB or 'sqlite3')
 *   fhirPath      URL path of the FHIR base on httpd and the backend (default /fhir/R4)
 *   fhirDirectives  raw lines inside the default <Location fhirPath> (before ProxyPass)
 *   locations     [{path, directives, proxyTo}] or ({backend, pg, fhirPath}) => [...]
 *                 (replaces the default location)
 *   pgFsync       PostgreSQL flushes commits to disk (default off)
 *   serverDirectives, users, logLevel, module, modulePath, moduleName, timeoutMs: as for startHttpd
 * @returns {Promise<{db, dir, fhirPath, fhirUrl, pg, backend, httpd, query(sql), stop()}>}
 *   fhirUrl is the FHIR base through httpd, e.g. http://127.0.0.1:PORT/fhir/R4;
 *   query(sql) resolves to rows (arrays of strings) from whichever database is in use.
 */
export async function startStack(opts = {}) {
  const db = dbKind(opts.db ?? process.env.FHIRSUB_DB ?? 'sqlite3');
  const fhirPath = opts.fhirPath ?? DEFAULT_FHIR_PATH;
  const dir = makeTempDir('fhirsub-it-');
  const stack = { db, dir, fhirPath, fhirUrl: null, pg: null, backend: null, httpd: null };
  const stoppers = [];

  stack.stop = async () => {
    const errors = [];
    for (const stop of stoppers.splice(0).reverse()) {
      await stop().catch((err) => errors.push(err));
    }
    removeDir(dir);
    if (errors.length) throw new AggregateError(errors, 'stack teardown failed');
  };

  try {
    if (db === 'pgsql') {
      stack.pg = await startPostgres(path.join(dir, 'pg'), { timeoutMs: opts.timeoutMs, fsync: opts.pgFsync });
      stoppers.push(stack.pg.stop);
    }
    stack.backend = await startBackend({ basePath: fhirPath, dir, timeoutMs: opts.timeoutMs });
    stoppers.push(stack.backend.stop);
    stack.httpd = await startHttpd({
      dir: path.join(dir, 'httpd'),
      logLevel: opts.logLevel,
      module: opts.module,
      modulePath: opts.modulePath,
      moduleName: opts.moduleName,
      users: opts.users,
      serverDirectives: opts.serverDirectives,
      db: db === 'pgsql' ? { driver: 'pgsql', params: stack.pg.conninfo } : { driver: 'sqlite3' },
      locations: resolveLocations(opts, { backend: stack.backend, pg: stack.pg, fhirPath }),
      timeoutMs: opts.timeoutMs,
    });
    stoppers.push(stack.httpd.stop);
    stack.fhirUrl = `${stack.httpd.baseUrl}${fhirPath}`;
    stack.query = (sql) => (db === 'pgsql' ? psqlRows(stack.pg.conninfo, sql) : sqliteRows(stack.httpd.dbFile, sql));
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {}); // the start error is the one worth reporting
    throw err;
  }
}
