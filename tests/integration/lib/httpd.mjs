// Starts a private Apache httpd 2.4 (mpm_event) from a generated config in a fresh directory.
// httpd runs in the foreground as our child; its worker processes are found by the config
// path in their command line, so stop() can wait until every one of them is gone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPortOpen, withFreePort } from './ports.mjs';
import {
  DEFAULT_TIMEOUT_MS,
  ensureDir,
  isProcessAlive,
  isRoot,
  makeTempDir,
  onProcessExit,
  readFileOr,
  removeDir,
  run,
  runSync,
  signalProcess,
  sleepSync,
  tail,
  waitFor,
} from './util.mjs';

const HTTPD_BIN = process.env.FHIRSUB_HTTPD || '/usr/sbin/apache2';
const MODULES_DIR = process.env.FHIRSUB_HTTPD_MODULES || '/usr/lib/apache2/modules'; // apxs -q LIBEXECDIR
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_MODULE_PATH = path.join(REPO_ROOT, 'mod_fhirsub/.libs/mod_fhirsub.so');
const RUN_USER = 'www-data';
const GRACEFUL_SHUTDOWN_SEC = 5;

// Shared modules we load; log_config and unixd are compiled into Debian's apache2 (apache2 -l).
const SHARED_MODULES = [
  'mpm_event',
  'authz_core',
  'authz_host',
  'authz_user',
  'authn_core',
  'authn_file',
  'auth_basic',
  'mime',
  'dbd',
  'proxy',
  'proxy_http',
  'proxy_wstunnel',
  'headers',
];

// Lines that mean an httpd process crashed or corrupted memory.
const CRASH_PATTERNS = [
  /Segmentation fault/,
  /exit signal/,
  /AH00051/,
  /AH00052/,
  /double free/,
  /free\(\): invalid/,
  /malloc\(\): /,
  /stack smashing/,
  /AddressSanitizer/,
  /LeakSanitizer/,
];

/** Throws (AssertionError) if the error log text shows a crash. */
export function assertNoCrash(errorLogText) {
  const hits = errorLogText.split('\n').filter((line) => CRASH_PATTERNS.some((re) => re.test(line)));
  assert.deepEqual(hits, [], `httpd crashed:\n${hits.join('\n')}`);
}

/**
 * Error log lines at warn level or worse that are not allowed by an AHnnnnn number or a RegExp in
 * `allow` (the mod_md practice: a test fails on unexpected warnings, expected ones are listed).
 */
export function unexpectedLogLines(errorLogText, allow = []) {
  const severe = /\[[\w.]*:(warn|error|crit|alert|emerg)\]/;
  const allowed = (line) => allow.some((a) => (a instanceof RegExp ? a.test(line) : line.includes(a)));
  return errorLogText.split('\n').filter((line) => severe.test(line) && !allowed(line));
}

/** Lines requiring a valid user from the instance's htpasswd file (see the `users` option). */
export function basicAuthDirectives(realm = 'fhirsub tests') {
  return [
    'AuthType Basic',
    `AuthName "${realm}"`,
    'AuthBasicProvider file',
    'AuthUserFile ${FHIRSUB_HTPASSWD}',
    'Require valid-user',
  ];
}

function quote(value) {
  return `"${String(value).replace(/(["\\])/g, '\\$1')}"`;
}

function loadModuleLines(modulePath, moduleName) {
  const lines = SHARED_MODULES.map((name) => `LoadModule ${name}_module ${MODULES_DIR}/mod_${name}.so`);
  if (modulePath) lines.push(`LoadModule ${moduleName} ${modulePath}`);
  return lines;
}

function dbdLines(db) {
  if (!db) return [];
  return [
    `DBDriver ${db.driver}`,
    `DBDParams ${quote(db.params)}`,
    'DBDMin 0',
    'DBDKeep 2',
    'DBDMax 10',
    'DBDExptime 60',
  ];
}

function locationBlock({ path: urlPath, directives = [], proxyTo = null }) {
  const proxy = proxyTo ? [`ProxyPass ${proxyTo} retry=0`, `ProxyPassReverse ${proxyTo}`] : [];
  return [`<Location ${quote(urlPath)}>`, ...[...directives, ...proxy].map((l) => `    ${l}`), '</Location>'];
}

function buildConfig(o) {
  return [
    `Define FHIRSUB_DIR ${o.dir}`,
    `Define FHIRSUB_HTPASSWD ${o.htpasswdFile}`,
    `ServerRoot ${quote(o.dir)}`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${o.port}`,
    `PidFile ${quote(o.pidFile)}`,
    `DefaultRuntimeDir ${quote(o.runDir)}`,
    `ErrorLog ${quote(o.errorLogFile)}`,
    `LogLevel ${o.logLevel}`,
    ...(isRoot() ? [`User ${RUN_USER}`, `Group ${RUN_USER}`] : []),
    ...loadModuleLines(o.modulePath, o.moduleName),
    'TypesConfig /etc/mime.types',
    'LogFormat "%h %u %t \\"%r\\" %>s %b %D" timed',
    `CustomLog ${quote(o.accessLogFile)} timed`,
    // Two children by default, so per-process state bugs show up in tests.
    'StartServers 2',
    'ServerLimit 4',
    'ThreadsPerChild 16',
    'MinSpareThreads 8',
    'MaxSpareThreads 32',
    'MaxRequestWorkers 64',
    `GracefulShutdownTimeout ${GRACEFUL_SHUTDOWN_SEC}`,
    'Timeout 30',
    ...dbdLines(o.db),
    ...o.serverDirectives,
    ...o.locations.flatMap(locationBlock),
    '',
  ].join('\n');
}

async function writeHtpasswd(file, users) {
  const entries = Object.entries(users ?? {});
  for (const [i, [name, password]] of entries.entries()) {
    await run('htpasswd', [i === 0 ? '-bc' : '-b', file, name, password]);
  }
  if (!entries.length) fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o644);
}

// Directories the children (www-data) write to: the SQLite database and its journal/WAL.
function makeWritableDir(dir) {
  ensureDir(dir, 0o755);
  if (isRoot()) runSync('chown', [`${RUN_USER}:${RUN_USER}`, dir]);
  return dir;
}

function resolveDb(db, dbDir) {
  if (!db) return { db: null, dbFile: null };
  if (db.driver === 'sqlite3') {
    const dbFile = db.params ?? path.join(dbDir, 'fhirsub.sqlite');
    return { db: { driver: 'sqlite3', params: dbFile }, dbFile };
  }
  return { db, dbFile: null };
}

// All live processes of this instance: the parent and its forked children share the cmdline.
function instancePids(confPath) {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = readFileOr(`/proc/${entry}/cmdline`);
    if (cmdline.split('\0').includes(confPath) && isProcessAlive(Number(entry))) pids.push(Number(entry));
  }
  return pids;
}

async function probeHttp(port) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/.harness-probe`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer(); // any answer will do; drain it so the connection is released
    return true;
  } catch {
    return false;
  }
}

function spawnHttpd(confPath, outFile) {
  const out = fs.openSync(outFile, 'a');
  try {
    const child = spawn(HTTPD_BIN, ['-f', confPath, '-DFOREGROUND'], { stdio: ['ignore', out, out] });
    child.unref(); // a forgotten stop() must not keep the test process alive; exit hooks clean up
    return child;
  } finally {
    fs.closeSync(out);
  }
}

// Waits until the server answers HTTP, or fails with the output that explains why it did not.
async function waitUntilServing(state, timeoutMs) {
  const { child, port } = state;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('exited');
      return (await isPortOpen(port)) && (await probeHttp(port));
    }, { what: `httpd on port ${port}`, timeoutMs });
  } catch (err) {
    const output = `${readFileOr(state.outFile)}${tail(readFileOr(state.errorLogFile))}`;
    const error = new Error(`httpd did not start (${err.message}):\n${output}`);
    error.portInUse = /Address already in use|could not bind/i.test(output);
    throw error;
  }
}

async function waitForExit(pids, timeoutMs, what) {
  await waitFor(() => pids.every((pid) => !isProcessAlive(pid)), { what, timeoutMs, intervalMs: 50 });
}

// Graceful stop (SIGWINCH), then TERM, then KILL; resolves when no process of the instance is left.
async function stopInstance(state) {
  const pids = [...new Set([state.child.pid, ...instancePids(state.confPath)])];
  signalProcess(state.child.pid, 'SIGWINCH');
  try {
    await waitForExit(pids, (GRACEFUL_SHUTDOWN_SEC + 5) * 1000, 'httpd graceful stop');
    return;
  } catch {
    signalProcess(state.child.pid, 'SIGTERM');
  }
  try {
    await waitForExit(pids, 5000, 'httpd stop');
  } catch {
    for (const pid of [...pids, ...instancePids(state.confPath)]) signalProcess(pid, 'SIGKILL');
    await waitForExit(pids, 5000, 'httpd kill');
  }
}

function stopInstanceSync(state) {
  signalProcess(state.child.pid, 'SIGTERM');
  for (let i = 0; i < 60 && instancePids(state.confPath).length; i++) sleepSync(50);
  for (const pid of instancePids(state.confPath)) signalProcess(pid, 'SIGKILL');
}

function countResumes(errorLogText) {
  return (errorLogText.match(/AH00489/g) ?? []).length; // "configured -- resuming normal operations"
}

/**
 * Starts httpd. Options (all optional):
 *   dir, port, logLevel ('warn', e.g. 'warn fhirsub:debug'), module (false: do not load it),
 *   modulePath (skipped when the file does not exist), moduleName ('fhirsub_module'),
 *   db {driver:'sqlite3'|'pgsql', params (sqlite3: default <dir>/db/fhirsub.sqlite)},
 *   serverDirectives [lines], locations [{path, directives:[lines], proxyTo}], users {name: password},
 *   timeoutMs.
 * Raw lines may use ${FHIRSUB_DIR} and ${FHIRSUB_HTPASSWD} (httpd Define variables).
 */
export async function startHttpd(opts = {}) {
  const dir = opts.dir ? ensureDir(opts.dir) : makeTempDir('fhirsub-httpd-');
  const modulePath = resolveModulePath(opts);
  const { db, dbFile } = resolveDb(opts.db, makeWritableDir(path.join(dir, 'db')));
  const state = {
    dir,
    port: null,
    child: null,
    confPath: path.join(dir, 'httpd.conf'),
    outFile: path.join(dir, 'httpd.out'),
    errorLogFile: path.join(dir, 'error.log'),
    accessLogFile: path.join(dir, 'access.log'),
    htpasswdFile: path.join(dir, 'htpasswd'),
    pidFile: path.join(dir, 'run', 'httpd.pid'),
    runDir: makeWritableDir(path.join(dir, 'run')),
  };
  const config = {
    ...state,
    logLevel: opts.logLevel ?? 'warn',
    modulePath,
    moduleName: opts.moduleName ?? 'fhirsub_module',
    db,
    serverDirectives: opts.serverDirectives ?? [],
    locations: opts.locations ?? [],
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  await writeHtpasswd(state.htpasswdFile, opts.users);

  const launch = async () => {
    state.child = spawnHttpd(state.confPath, state.outFile);
    try {
      await waitUntilServing(state, timeoutMs);
    } catch (err) {
      await stopInstance(state);
      throw err;
    }
  };
  const startOnPort = async (port) => {
    state.port = port;
    fs.writeFileSync(state.confPath, buildConfig({ ...config, port }));
    await launch();
    return port;
  };

  const unregister = onProcessExit(() => state.child && stopInstanceSync(state));
  try {
    await (opts.port ? startOnPort(opts.port) : withFreePort(startOnPort));
  } catch (err) {
    unregister();
    removeDir(opts.dir ? null : dir);
    throw err;
  }

  let stopped = false;
  const handle = {
    port: state.port,
    baseUrl: `http://127.0.0.1:${state.port}`,
    dir,
    confPath: state.confPath,
    dbFile,
    htpasswdFile: state.htpasswdFile,
    modulePath,
    /** Error log text from offset `from` (a logSize() taken earlier) to the end. */
    errorLog: (from = 0) => readFileOr(state.errorLogFile).slice(from),
    logSize: () => readFileOr(state.errorLogFile).length,
    accessLog: () => readFileOr(state.accessLogFile),
    pids: () => instancePids(state.confPath),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopInstance(state);
      unregister();
      removeDir(opts.dir ? null : dir);
    },
    /**
     * mode 'full' (default): stop every process and start anew on the same port and config.
     * mode 'graceful' (SIGUSR1) or 'hup' (SIGHUP): httpd's own restarts, which re-run the
     * module's config and child init in the running parent.
     */
    async restart({ mode = 'full' } = {}) {
      assert.ok(!stopped, 'restart() after stop()');
      if (mode === 'full') {
        await stopInstance(state);
        await launch();
        return;
      }
      const before = countResumes(handle.errorLog());
      signalProcess(state.child.pid, mode === 'graceful' ? 'SIGUSR1' : 'SIGHUP');
      await waitFor(() => countResumes(handle.errorLog()) > before, { what: `httpd ${mode} restart`, timeoutMs });
      await waitUntilServing(state, timeoutMs);
    },
  };
  return handle;
}

// The module is skipped while it is not built yet, unless FHIRSUB_REQUIRE_MODULE=1 (for CI).
function resolveModulePath(opts) {
  if (opts.module === false) return null;
  const modulePath = opts.modulePath ?? process.env.FHIRSUB_MODULE ?? DEFAULT_MODULE_PATH;
  if (fs.existsSync(modulePath)) return modulePath;
  if (process.env.FHIRSUB_REQUIRE_MODULE === '1') throw new Error(`module not built: ${modulePath}`);
  return null;
}
