// A throwaway PostgreSQL 15 cluster per run. The server refuses to run as root, so as root
// the cluster directory belongs to `postgres` and initdb/pg_ctl run as that user.
import fs from 'node:fs';
import path from 'node:path';
import { withFreePort } from './ports.mjs';
import {
  DEFAULT_TIMEOUT_MS,
  ensureDir,
  isRoot,
  makeTempDir,
  onProcessExit,
  readFileOr,
  removeDir,
  run,
  runSync,
  tail,
} from './util.mjs';

const PG_BIN = process.env.FHIRSUB_PG_BIN || '/usr/lib/postgresql/15/bin';
const PG_USER = 'fhirsub';
const OS_USER = 'postgres';

// argv that runs a PostgreSQL tool as the postgres OS user when we are root.
function asPostgres(tool, args) {
  const bin = path.join(PG_BIN, tool);
  return isRoot() ? ['runuser', ['-u', OS_USER, '--', bin, ...args]] : [bin, args];
}

function chownToPostgres(dir) {
  if (isRoot()) runSync('chown', ['-R', `${OS_USER}:${OS_USER}`, dir]);
}

export function conninfoFor(port, dbname = 'postgres') {
  return `host=127.0.0.1 port=${port} dbname=${dbname} user=${PG_USER}`;
}

async function initCluster(dataDir, timeoutMs) {
  // -A trust: loopback-only throwaway cluster; --no-sync: its durability does not matter.
  await run(...asPostgres('initdb', ['-D', dataDir, '-A', 'trust', '-U', PG_USER, '-E', 'UTF8', '--no-sync']), {
    timeoutMs,
  });
}

async function startServer({ dir, dataDir, logFile, port, timeoutMs, fsync }) {
  const serverOptions = `-k ${dir} -c listen_addresses=127.0.0.1 -p ${port} -c fsync=${fsync ? 'on' : 'off'}`;
  const timeoutSec = String(Math.ceil(timeoutMs / 1000));
  try {
    await run(...asPostgres('pg_ctl', ['-D', dataDir, '-o', serverOptions, '-l', logFile, '-w', '-t', timeoutSec, 'start']), {
      timeoutMs: timeoutMs + 5000,
    });
  } catch (err) {
    const log = readFileOr(logFile);
    const error = new Error(`PostgreSQL did not start on port ${port}: ${err.message}\n${tail(log)}`);
    error.portInUse = /Address already in use|could not bind/i.test(log);
    throw error;
  }
}

function stopServerSync(dataDir) {
  runSync(...asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop']), { timeoutMs: 15_000 });
}

async function stopServer(dataDir) {
  if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  try {
    await run(...asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '20', 'stop']), { timeoutMs: 25_000 });
  } catch {
    stopServerSync(dataDir); // fast shutdown stuck: do not leave the cluster running
  }
}

/**
 * Starts a private cluster in dir (a new temp dir when omitted). fsync: flush commits to
 * disk as a production server does (default off: the tests' durability does not matter;
 * the benchmarks turn it on so commits cost what they cost).
 * @returns {Promise<{port:number, conninfo:string, dir:string, log():string, stop():Promise<void>,
 *   restart({downMs}):Promise<void>}>}
 */
export async function startPostgres(dir, { timeoutMs = DEFAULT_TIMEOUT_MS, fsync = false } = {}) {
  const ownDir = dir ? ensureDir(dir, 0o700) : makeTempDir('fhirsub-pg-');
  const dataDir = path.join(ownDir, 'data');
  const logFile = path.join(ownDir, 'postgres.log');
  chownToPostgres(ownDir);
  const unregister = onProcessExit(() => stopServerSync(dataDir));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopServer(dataDir);
    unregister();
    if (!dir) removeDir(ownDir);
  };
  try {
    await initCluster(dataDir, timeoutMs);
    const port = await withFreePort((p) => startServer({ dir: ownDir, dataDir, logFile, port: p, timeoutMs, fsync }).then(() => p));
    // A fast restart on the same port (pg_ctl keeps the options): every client connection is
    // cut, as by a failover or a maintenance restart.
    const restart = async ({ downMs = 0 } = {}) => {
      await run(...asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '20', 'stop']), { timeoutMs: 25_000 });
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await startServer({ dir: ownDir, dataDir, logFile, port, timeoutMs });
    };
    return { port, conninfo: conninfoFor(port), dir: ownDir, log: () => readFileOr(logFile), stop, restart };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Runs SQL with psql; resolves to its trimmed output (unaligned, tuples only, fields split by '|'). */
export async function psql(conninfo, sql, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql];
  const { stdout } = await run('psql', args, { timeoutMs });
  return stdout.trim();
}

/** Runs a query and returns its rows as arrays of strings (NULL becomes ''). */
export async function psqlRows(conninfo, sql, opts) {
  const FIELD_SEP = '\x1f';
  const args = ['-X', '-q', '-A', '-t', '-F', FIELD_SEP, '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-c', sql];
  const { stdout } = await run('psql', args, { timeoutMs: opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(FIELD_SEP));
}
