// Starts fhirsub-notifier (the freshly built binary) against a stack's database, and helpers
// for its tests: direct event rows, wake-ups, token minting, RSS.
// As root the notifier runs as www-data (spawn uid/gid, no wrapper process): on SQLite it
// shares the database file with httpd's children and must not create -wal/-shm files they
// cannot open.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isPortOpen } from './ports.mjs';
import { psql } from './pg.mjs';
import { sqlite } from './sqlite.mjs';
import {
  DEFAULT_TIMEOUT_MS,
  isProcessAlive,
  isRoot,
  makeTempDir,
  onProcessExit,
  readFileOr,
  removeDir,
  signalProcess,
  sleepSync,
  tail,
  waitFor,
} from './util.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const NOTIFIER_BIN = process.env.FHIRSUB_NOTIFIER || path.join(REPO_ROOT, 'notifier/fhirsub-notifier');
export const NOTIFIER_LSAN_BIN = path.join(REPO_ROOT, 'notifier/fhirsub-notifier-lsan');
export const WS_PATH = '/ws/subscriptions-r4';
const RUN_USER = 'www-data';

function runIds() {
  if (!isRoot()) return {};
  const id = (flag) => Number(spawnSync('id', [flag, RUN_USER], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Lines of a notifier config file from an object {Key: value}. */
function configText(entries) {
  return `${Object.entries(entries)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k} ${v}`)
    .join('\n')}\n`;
}

/**
 * Starts the notifier on a free port (or `port`). Options:
 *   stack (required: its database is used), keyFile (the module's HMAC key), alg ('HS256'),
 *   config {Key: value} (more keys, e.g. PollInterval), bin, env, timeoutMs.
 * Resolves to {port, url, pid, dir, configFile, log(from), logSize(), waitForLog(re), rss(),
 *   stop({signal}), exited(), exitCode()}.
 */
export async function startNotifier({ stack, keyFile, alg = 'HS256', port, config = {}, bin = NOTIFIER_BIN, env, lsanSuppressions, timeoutMs = DEFAULT_TIMEOUT_MS }) {
  if (!fs.existsSync(bin)) throw new Error(`notifier not built: ${bin}`);
  const dir = makeTempDir('fhirsub-nt-');
  const ids = runIds();
  const key = path.join(dir, 'token.key');
  fs.copyFileSync(keyFile, key);
  fs.chmodSync(key, 0o600);
  if (isRoot()) fs.chownSync(key, ids.uid, ids.gid);
  const listenPort = port ?? (await freePort());
  const db = stack.db === 'pgsql' ? { DBDriver: 'pgsql', DBParams: stack.pg.conninfo } : { DBDriver: 'sqlite3', DBParams: stack.httpd.dbFile };
  const configFile = path.join(dir, 'notifier.conf');
  fs.writeFileSync(
    configFile,
    configText({ Listen: `127.0.0.1:${listenPort}`, ...db, TokenKey: `${alg} ${key}`, LogLevel: 'info', ...config }),
  );
  const logFile = path.join(dir, 'notifier.log');
  const out = fs.openSync(logFile, 'a');
  // www-data may not traverse the checkout (a CI clone under a 0700 directory): run a
  // copy of the binary from this instance's own directory.
  const exe = isRoot() ? path.join(dir, path.basename(bin)) : bin;
  if (exe !== bin) {
    fs.copyFileSync(bin, exe);
    fs.chmodSync(exe, 0o755);
  }
  if (lsanSuppressions) {
    // Read by the notifier itself, so it goes where www-data can read it too.
    const supp = path.join(dir, 'lsan.supp');
    fs.copyFileSync(lsanSuppressions, supp);
    env = { ...env, LSAN_OPTIONS: `exitcode=23:suppressions=${supp}:print_suppressions=0` };
  }
  let child;
  try {
    child = spawn(exe, ['-c', configFile], { stdio: ['ignore', out, out], env: { ...process.env, ...env }, ...ids });
  } finally {
    fs.closeSync(out);
  }
  child.unref();
  let exit = null;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exit = { code, signal }))));
  const unregister = onProcessExit(() => {
    if (exit) return;
    signalProcess(child.pid, 'SIGKILL');
    for (let i = 0; i < 40 && isProcessAlive(child.pid); i++) sleepSync(50);
  });
  const log = (from = 0) => readFileOr(logFile).slice(from);

  const handle = {
    port: listenPort,
    url: `ws://127.0.0.1:${listenPort}${WS_PATH}`,
    pid: child.pid,
    dir,
    configFile,
    log,
    logSize: () => readFileOr(logFile).length,
    exited: () => exit !== null,
    exitCode: () => exit,
    /** Waits for a log line matching re (after byte offset from). */
    waitForLog: (re, { from = 0, timeoutMs: ms = timeoutMs } = {}) =>
      waitFor(() => re.test(log(from)), { what: `notifier log ${re}:\n${tail(log(from))}`, timeoutMs: ms }),
    /** Resident set size in KiB (VmRSS). */
    rss: () => Number(/VmRSS:\s+(\d+)/.exec(readFileOr(`/proc/${child.pid}/status`))?.[1] ?? NaN),
    /** Stops it (SIGTERM: graceful) and resolves to {code, signal}. */
    async stop({ signal = 'SIGTERM', keepDir = false } = {}) {
      if (!exit) {
        signalProcess(child.pid, signal);
        const timer = setTimeout(() => signalProcess(child.pid, 'SIGKILL'), 15_000);
        await exitPromise;
        clearTimeout(timer);
      }
      unregister();
      if (!keepDir) removeDir(dir);
      return exit;
    },
  };
  try {
    await waitFor(
      async () => {
        if (exit) throw new Error(`notifier exited (${exit.code ?? exit.signal})`);
        return /FS20104: database ready/.test(log()) && (await isPortOpen(listenPort));
      },
      { what: 'the notifier', timeoutMs },
    );
  } catch (err) {
    const text = log();
    await handle.stop();
    throw new Error(`notifier did not start: ${err.message}\n${tail(text)}`);
  }
  return handle;
}

/** Notifier log lines at warn or error level not matching any of allow (RegExps). */
export function notifierProblems(logText, allow = []) {
  return logText
    .split('\n')
    .filter((line) => /\[(warn|error)\]/.test(line) && !allow.some((re) => re.test(line)));
}

// ---- events recorded directly in the database (until the capture fills them) -------------

function q(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

/**
 * Records one event for subscription subId the way the capture does: a change row, the
 * subscription's counter + 1 under its row lock, the event numbered with it, one transaction.
 * Resolves to the change id. On PostgreSQL, notify: true also sends pg_notify (at commit).
 */
export async function recordEvent(stack, subId, { resourceType = 'Encounter', id = '1', interaction = 'update', body, notify = false } = {}) {
  const changeId = crypto.randomUUID();
  const now = Date.now();
  const resource = body === undefined ? JSON.stringify({ resourceType, id }) : body;
  const method = { create: 'POST', update: 'PUT', delete: 'DELETE' }[interaction];
  const url = interaction === 'create' ? resourceType : `${resourceType}/${id}`;
  const status = { create: '201', update: '200', delete: '204' }[interaction];
  const statements = [
    'BEGIN',
    `INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id, interaction, request_method, request_url, response_status, body) VALUES (${q(changeId)}, ${now}, ${q(resourceType)}, ${q(id)}, '1', ${q(interaction)}, ${q(method)}, ${q(url)}, ${q(status)}, ${q(interaction === 'delete' ? '' : resource)})`,
    `UPDATE fhirsub_sub_counter SET events_since_start = events_since_start + 1 WHERE subscription_id = ${q(subId)}`,
    `INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms) SELECT subscription_id, events_since_start, ${q(changeId)}, ${now} FROM fhirsub_sub_counter WHERE subscription_id = ${q(subId)}`,
    ...(notify && stack.db === 'pgsql' ? [`SELECT pg_notify('fhirsub_event', ${q(subId)})`] : []),
    'COMMIT',
  ];
  const sql = `${statements.join(';\n')};`;
  if (stack.db === 'pgsql') await psql(stack.pg.conninfo, sql);
  else await sqlite(stack.httpd.dbFile, sql);
  return changeId;
}

/**
 * Records n events at once for subId (one transaction), each with a resource body of about
 * `size` bytes, built by the database itself (no huge SQL text). On PostgreSQL the
 * transaction sends pg_notify unless notify is false.
 */
export async function recordEvents(stack, subId, n, { size = 100, notify = true } = {}) {
  const prefix = crypto.randomUUID();
  const now = Date.now();
  const pad = stack.db === 'pgsql' ? `repeat('0', ${size})` : `hex(zeroblob(${Math.ceil(size / 2)}))`;
  const seq = `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})`;
  const sql = [
    'BEGIN',
    `${seq} INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id, interaction, request_method, request_url, response_status, body) SELECT '${prefix}-' || i, ${now}, 'Encounter', 'big-' || i, '1', 'update', 'PUT', 'Encounter/big-' || i, '200', '{"resourceType":"Encounter","id":"big-' || i || '","status":"' || ${pad} || '"}' FROM seq`,
    `${seq} INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms) SELECT ${q(subId)}, (SELECT events_since_start FROM fhirsub_sub_counter WHERE subscription_id = ${q(subId)}) + i, '${prefix}-' || i, ${now} FROM seq`,
    `UPDATE fhirsub_sub_counter SET events_since_start = events_since_start + ${n} WHERE subscription_id = ${q(subId)}`,
    ...(notify && stack.db === 'pgsql' ? [`SELECT pg_notify('fhirsub_event', ${q(subId)})`] : []),
    'COMMIT',
  ].join(';\n');
  if (stack.db === 'pgsql') await psql(stack.pg.conninfo, `${sql};`);
  else await sqlite(stack.httpd.dbFile, `${sql};`);
}

/** Sends a wake-up datagram (payload: subscription ids, or '' for all) to 127.0.0.1:port. */
export function sendWake(port, payload = '') {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.send(Buffer.from(payload), port, '127.0.0.1', (err) => {
      socket.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

// ---- tokens made by the test itself (forgeries, other users' grants) ---------------------------

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** A compact JWS signed with an HMAC key file (header.alg as given; 'none' makes no signature). */
export function mintToken(keyFile, claims, { alg = 'HS256', header } = {}) {
  const h = b64url(header ?? { alg, typ: 'JWT' });
  const p = b64url(claims);
  if (alg === 'none') return `${h}.${p}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  const sig = crypto.createHmac(hash, fs.readFileSync(keyFile)).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

/** Claims as mod_fhirsub mints them. */
export function tokenClaims({ user, jti, subscriptions, lifetime = 60, iat = Math.floor(Date.now() / 1000) }) {
  return { iss: 'mod_fhirsub', aud: 'fhirsub-ws', sub: user, jti, iat, exp: iat + lifetime, subscriptions };
}

/** Inserts a grant row (and its links) directly, as $get-ws-binding-token does. */
export async function insertGrant(stack, { id, owner, subscriptions, expiresMs = Date.now() + 60_000 }) {
  const statements = [
    `INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms) VALUES (${q(id)}, ${q(owner)}, ${Date.now()}, ${expiresMs}, 0)`,
    ...subscriptions.map((s) => `INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id) VALUES (${q(id)}, ${q(s)})`),
  ];
  const sql = `${statements.join(';\n')};`;
  if (stack.db === 'pgsql') await psql(stack.pg.conninfo, sql);
  else await sqlite(stack.httpd.dbFile, sql);
}

// ---- raw websocket clients (for what a polite client never does) ----------------------------

/** A client frame (masked, as RFC 6455 requires): opcode 1 text, 2 binary, 0 continuation. */
export function wsFrame(payload, { opcode = 1, fin = true, declaredLength } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = declaredLength ?? data.length;
  let header;
  if (len < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = crypto.randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/**
 * Opens a TCP connection and sends a websocket upgrade for path. Resolves to the socket once
 * the 101 came (the rest of the stream is left unread), or rejects.
 */
export function rawWsConnect(port, path = WS_PATH, { timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no upgrade answer'));
    }, timeoutMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (!/^HTTP\/1\.1 101/.test(head.toString('latin1'))) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${head.toString('latin1').split('\r\n')[0]}`));
        return;
      }
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.pause(); // nothing is read until the caller asks (resume() or a 'data' listener)
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** Waits until the notifier process has exited (e.g. after stop({signal})). */
export async function waitForExit(handle, timeoutMs = DEFAULT_TIMEOUT_MS) {
  await waitFor(() => handle.exited(), { what: 'notifier exit', timeoutMs });
  return handle.exitCode();
}

export { isPortOpen };
