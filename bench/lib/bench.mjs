// Shared by every bench/NN-* script: the stack to measure (the integration tests' own httpd,
// backend, PostgreSQL and notifier helpers, tuned for load), wrk runs, database seeding and the
// one way a figure is printed next to its same-run baseline. See bench/README.md.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, fhirsubDirectives, jwtSignatureValid, makeKeyDir, param, USERS } from '../../tests/integration/lib/fhirsub.mjs';
import { startNotifier, WS_PATH } from '../../tests/integration/lib/notifier.mjs';
import { freePorts } from '../../tests/integration/lib/ports.mjs';
import { startStack } from '../../tests/integration/lib/stack.mjs';
import { capture, makeTempDir, removeDir } from '../../tests/integration/lib/util.mjs';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PLAIN_PATH = '/plain/R4';
export const STATIC_PATH = '/static';
export const ANON_USER = 'anonymous';
export const IDENT = 'http://example.org/fhirsub-bench/ident';

/** The Patient the write benches create: identifier IDENT|value. */
export function patient(value) {
  return { resourceType: 'Patient', identifier: [{ system: IDENT, value }], name: [{ family: 'Bench', given: ['Load'] }], gender: 'unknown', birthDate: '1970-01-01' };
}

/** Run settings from the environment bench/run sets: {db, quick, seconds, rounds}. */
export function benchSettings() {
  const quick = process.env.BENCH_QUICK === '1';
  return {
    db: process.env.FHIRSUB_DB ?? 'sqlite3',
    quick,
    seconds: Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 3)),
    rounds: Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3)),
  };
}

// Load settings for every httpd of the benches: unlimited keep-alive (wrk keeps its
// connections); two children of 32 threads each, kept for the whole run (no child stopped
// for spare threads), so that even when every load connection lands in one child it stays
// under mpm_event's per-child connection limit (above it, idle keep-alive connections are
// closed: wrk counts those as read errors).
const LOAD_DIRECTIVES = [
  'KeepAlive On',
  'MaxKeepAliveRequests 0',
  'KeepAliveTimeout 30',
  'StartServers 2',
  'ServerLimit 2',
  'ThreadsPerChild 32',
  'MaxRequestWorkers 64',
  'MinSpareThreads 16',
  'MaxSpareThreads 64',
  'MaxConnectionsPerChild 0',
];

const MODULES_DIR = process.env.FHIRSUB_HTTPD_MODULES || '/usr/lib/apache2/modules';

function staticDirectives(dir) {
  return [
    `LoadModule alias_module ${MODULES_DIR}/mod_alias.so`,
    `Alias ${STATIC_PATH} ${dir}`,
    `<Directory ${dir}>`,
    '    Require all granted',
    '</Directory>',
  ];
}

/**
 * Starts [PostgreSQL] + the FHIR backend + httpd (+ fhirsub-notifier) for a benchmark:
 *   fhirPath (/fhir/R4): FhirSub On, websocket URL and HS256 key, conf/topics, anonymous
 *     callers allowed (FhirSubAnonymous On: they are ANON_USER) unless auth: true;
 *   PLAIN_PATH (/plain/R4): the same backend without FhirSub (the capture-off baseline);
 *   STATIC_PATH (/static): files of a directory, written with writeStatic(name, bytes).
 * Options: db, auth (Basic auth with USERS instead of anonymous), notifier (start
 *   fhirsub-notifier, with UDP wake-ups on SQLite), notifierConfig {Key: value}, lifetime (s),
 *   fhirDirectives, serverDirectives (more raw lines), logLevel ('warn').
 * Resolves to {db, stack, fhirUrl, plainUrl, baseUrl, port, keyFile, wsUrl, nt, query(sql),
 *   staticUrl(name), writeStatic(name, bytes), stop()}.
 */
export async function startBenchStack(opts = {}) {
  const db = opts.db ?? benchSettings().db;
  const key = makeKeyDir();
  const staticDir = makeTempDir('fhirsub-bench-static-');
  const [ntPort, wakePort] = await freePorts(2);
  const wsUrl = `ws://127.0.0.1:${ntPort}${WS_PATH}`;
  const wake = opts.notifier && db === 'sqlite3' ? [`FhirSubNotifierWakeup 127.0.0.1:${wakePort}`] : [];
  const access = opts.auth ? [] : ['FhirSubAnonymous On'];
  const ctx = { db, keyFile: key.keyFile, wsUrl, nt: null, stack: null };
  const cleanup = async () => {
    await ctx.nt?.stop().catch(() => {});
    await ctx.stack?.stop().catch(() => {});
    key.cleanup();
    removeDir(staticDir);
  };
  try {
    ctx.stack = await startStack({
      db,
      pgFsync: true, // commits cost what they cost in production
      users: USERS,
      logLevel: opts.logLevel ?? 'warn',
      serverDirectives: [
        ...LOAD_DIRECTIVES,
        ...staticDirectives(staticDir),
        ...(opts.notifier ? [`ProxyPass ${WS_PATH} ws://127.0.0.1:${ntPort}${WS_PATH}`] : []),
        ...(opts.serverDirectives ?? []),
      ],
      locations: ({ backend, fhirPath }) => [
        {
          path: fhirPath,
          directives: fhirsubDirectives({
            wsUrl,
            keyFile: key.keyFile,
            lifetime: opts.lifetime ?? 3600,
            auth: Boolean(opts.auth),
            extra: [...access, ...wake, ...(opts.fhirDirectives ?? [])],
          }),
          proxyTo: backend.url,
        },
        { path: PLAIN_PATH, directives: [], proxyTo: backend.url },
      ],
    });
    if (opts.notifier) {
      ctx.nt = await startNotifier({
        stack: ctx.stack,
        keyFile: key.keyFile,
        port: ntPort,
        config: { WakeListen: db === 'sqlite3' ? `127.0.0.1:${wakePort}` : undefined, LogLevel: 'warn', ...opts.notifierConfig },
      });
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const { stack } = ctx;
  return {
    ...ctx,
    fhirUrl: stack.fhirUrl,
    plainUrl: `${stack.httpd.baseUrl}${PLAIN_PATH}`,
    baseUrl: stack.httpd.baseUrl,
    port: stack.httpd.port,
    query: (sql) => stack.query(sql),
    staticUrl: (name) => `${stack.httpd.baseUrl}${STATIC_PATH}/${name}`,
    writeStatic(name, bytes) {
      const file = path.join(staticDir, name);
      fs.writeFileSync(file, bytes);
      fs.chmodSync(file, 0o644);
      return file;
    },
    stop: cleanup,
  };
}

// ---- HTTP requests ----------------------------------------------------------------------

/** One request; resolves to {status, headers, text, body (JSON or null), bytes}. */
export async function request(url, { method = 'GET', body, headers = {}, user } = {}) {
  const h = { Accept: 'application/fhir+json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/fhir+json';
  if (user) h.Authorization = basicAuth(user);
  const res = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, body: json, bytes: buf.length };
}

export function basicAuth(user) {
  return `Basic ${Buffer.from(`${user}:${USERS[user]}`).toString('base64')}`;
}

/** POSTs a Subscription and returns it (asserts 201). */
export async function createSubscription(fhirUrl, body, { user } = {}) {
  const res = await request(`${fhirUrl}/Subscription`, { method: 'POST', body, user });
  assert.equal(res.status, 201, `Subscription create: ${res.text.slice(0, 400)}`);
  return res.body;
}

/**
 * Asserts that a $get-ws-binding-token answer carries a real token: a JWT signed with the
 * stack's key, naming the subscription ids, whose grant row exists. Returns the payload.
 */
export async function assertRealToken(ctx, res, subIds) {
  assert.equal(res.status, 200, res.text.slice(0, 400));
  const token = param(res.body, 'token').valueString;
  assert.ok(jwtSignatureValid(token, ctx.keyFile), 'token signature verifies with the key');
  const { payload } = decodeJwt(token);
  assert.ok(payload.jti, `jti in ${JSON.stringify(payload)}`);
  for (const id of subIds) assert.ok(JSON.stringify(payload).includes(id), `token names Subscription/${id}`);
  const rows = await ctx.query(`SELECT COUNT(*) FROM fhirsub_grant WHERE id = '${payload.jti}'`);
  assert.equal(Number(rows[0][0]), 1, `grant row of token ${payload.jti}`);
  return payload;
}

export async function countRows(ctx, table, where = '1 = 1') {
  return Number((await ctx.query(`SELECT COUNT(*) FROM ${table} WHERE ${where}`))[0][0]);
}

/**
 * Waits (at most timeoutMs) until the rows of a table stop growing and returns their count:
 * events are recorded after their answer went out, so the last writes of a load finish later.
 */
export async function settledCount(ctx, table, where, { timeoutMs = 30_000, quietMs = 1000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = await countRows(ctx, table, where);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await countRows(ctx, table, where);
    if (now === last) return now;
    last = now;
  }
  return last;
}

// ---- wrk ----------------------------------------------------------------------------------

function luaString(s) {
  return `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** A wrk Lua script setting method, body and headers (all requests alike). */
function wrkScript({ method = 'GET', body, headers = {} }) {
  const lines = [`wrk.method = ${luaString(method)}`];
  if (body !== undefined) lines.push(`wrk.body = ${luaString(typeof body === 'string' ? body : JSON.stringify(body))}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  return `${lines.join('\n')}\n`;
}

function parseDuration(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]];
}

/** Parses wrk's --latency report: {requests, rps, non2xx, socketErrors, p50Ms, p99Ms}. */
export function parseWrk(out) {
  const num = (re) => Number(re.exec(out)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in /),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p50Ms: parseDuration(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99Ms: parseDuration(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
  };
}

/**
 * Runs wrk (keep-alive) against url for `seconds`; resolves to parseWrk's figures plus the
 * command line. Asserts no non-2xx answer and no socket error unless allowErrors.
 * Options: method, body, headers, connections (16), threads (1), seconds, allowErrors.
 */
export async function wrk(url, { method, body, headers, connections = 16, threads = 1, seconds = benchSettings().seconds, allowErrors = false } = {}) {
  const dir = makeTempDir('fhirsub-bench-wrk-');
  try {
    const script = path.join(dir, 'req.lua');
    fs.writeFileSync(script, wrkScript({ method, body, headers }));
    const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', '-s', script, url];
    const { code, stdout, stderr } = await capture('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
    assert.equal(code, 0, `wrk failed (${code}): ${stderr}${stdout}`);
    const result = { ...parseWrk(stdout), command: `wrk ${args.join(' ')}`, output: stdout };
    if (!allowErrors) {
      assert.equal(result.non2xx, 0, `non-2xx answers under load:\n${stdout}`);
      // A rare reset keep-alive connection (wrk reconnects; the request is not counted)
      // is tolerated and shown; more is a failure.
      const tolerated = Math.max(1, Math.floor(result.requests / 2000));
      assert.ok(result.socketErrors <= tolerated, `socket errors under load:\n${stdout}`);
      if (result.socketErrors) console.error(`note: ${result.socketErrors} socket error(s) in ${result.requests} requests to ${url}`);
    }
    assert.ok(result.requests > 0, `wrk made no request:\n${stdout}`);
    return result;
  } finally {
    removeDir(dir);
  }
}

/** CPU seconds (user + system, all threads) the processes have used so far; gone ones count 0. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the ")" that closes the command name: utime is the 12th, stime the 13th
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100; // USER_HZ
}

/** Wraps a wrk turn: adds cpuPerRequestUs, the CPU the processes of pids() spent per answered request. */
export function withCpu(pids, turn) {
  return async () => {
    const list = pids();
    const before = cpuSeconds(list);
    const result = await turn();
    return { ...result, cpuPerRequestUs: ((cpuSeconds(list) - before) * 1e6) / result.requests };
  };
}

/**
 * Measures several variants in turn, `rounds` times (ABAB..., so drift from other load on the
 * machine hits each alike), and returns per variant {median rps, runs}. variants: {name: () =>
 * Promise<wrk result>}.
 */
export async function interleave(variants, { rounds = benchSettings().rounds } = {}) {
  const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, fn] of Object.entries(variants)) runs[name].push(await fn());
  }
  const out = {};
  for (const [name, list] of Object.entries(runs)) out[name] = { rps: median(list.map((r) => r.rps)), runs: list };
  return out;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// ---- database seeding (bulk SQL, the same text on SQLite and PostgreSQL) --------------------

/** `WITH RECURSIVE` series 1..n as n_(i): both databases run it. */
function series(n) {
  return `WITH RECURSIVE n_(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n_ WHERE i < ${Number(n)})`;
}

function sqlText(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

const SUB_COPY_COLUMNS = [
  'owner', 'status', 'channel_type', 'shape', 'topic', 'criteria', 'filters', 'content', 'content_type',
  'heartbeat_period', 'timeout', 'max_count', 'end_ms', 'base_url', 'error', 'version_id', 'created_ms',
  'updated_ms', 'resource', 'keyed',
];
/** Each subscription's counter row (fhirsub_sub_counter, schema v3). */
const COUNTER_COPY_COLUMNS = ['events_since_start', 'last_delivery_ms', 'last_bound_ms'];

/**
 * Inserts `count` copies of the Subscription row `templateId`, ids `${prefix}${i}` (i from 1),
 * with copies of its counter row (fhirsub_sub_counter) and index keys (fhirsub_sub_key), in three
 * statements. The copies match
 * exactly what the template matches and are found the way it is. With `distinct`, a filter
 * value of the template: each copy has `${distinct}-${i}` instead (in its filters, criteria,
 * resource and keys), as one subscription per patient would.
 */
export async function cloneSubscriptions(ctx, templateId, count, prefix, { distinct } = {}) {
  if (count <= 0) return;
  const newId = `${sqlText(prefix)} || CAST(n_.i AS VARCHAR(20))`;
  const own = (expr) => (distinct
    ? `REPLACE(${expr}, ${sqlText(distinct)}, ${sqlText(`${distinct}-`)} || CAST(n_.i AS VARCHAR(20)))`
    : expr);
  const perCopy = new Set(['filters', 'criteria', 'resource']);
  const values = SUB_COPY_COLUMNS.map((c) => (perCopy.has(c) ? own(`t.${c}`) : `t.${c}`));
  await ctx.query(
    `${series(count)} INSERT INTO fhirsub_subscription (id, ${SUB_COPY_COLUMNS.join(', ')})` +
      ` SELECT ${newId}, ${values.join(', ')}` +
      ` FROM n_ CROSS JOIN fhirsub_subscription t WHERE t.id = ${sqlText(templateId)}`,
  );
  await ctx.query(
    `${series(count)} INSERT INTO fhirsub_sub_counter (subscription_id, ${COUNTER_COPY_COLUMNS.join(', ')})` +
      ` SELECT ${newId}, ${COUNTER_COPY_COLUMNS.map((c) => `t.${c}`).join(', ')}` +
      ` FROM n_ CROSS JOIN fhirsub_sub_counter t WHERE t.subscription_id = ${sqlText(templateId)}`,
  );
  await ctx.query(
    `${series(count)} INSERT INTO fhirsub_sub_key (key, subscription_id)` +
      ` SELECT ${own('k.key')}, ${newId} FROM n_ CROSS JOIN fhirsub_sub_key k` +
      ` WHERE k.subscription_id = ${sqlText(templateId)}`,
  );
}

/**
 * After bulk seeding or deleting, what a running server does by itself before long:
 * PostgreSQL vacuums and analyzes the changed tables (autovacuum) and checkpoints; SQLite
 * moves the WAL into the database. Without it the next turns pay for the bulk work (dead
 * row versions, stale statistics, a checkpoint in the middle of a measurement).
 */
export async function settleDatabase(ctx) {
  if (ctx.db === 'pgsql') {
    await ctx.query('VACUUM ANALYZE'); // not in a transaction block: a statement alone
    await ctx.query('CHECKPOINT');
  } else {
    await ctx.query('PRAGMA wal_checkpoint(PASSIVE)');
  }
}

/** Deletes the Subscription rows whose id starts with prefix (and their counters, events and keys). */
export async function deleteSubscriptions(ctx, prefix) {
  await ctx.query(`DELETE FROM fhirsub_sub_counter WHERE subscription_id LIKE ${sqlText(`${prefix}%`)}`);
  await ctx.query(`DELETE FROM fhirsub_event WHERE subscription_id LIKE ${sqlText(`${prefix}%`)}`);
  await ctx.query(`DELETE FROM fhirsub_sub_key WHERE subscription_id LIKE ${sqlText(`${prefix}%`)}`);
  await ctx.query(`DELETE FROM fhirsub_subscription WHERE id LIKE ${sqlText(`${prefix}%`)}`);
}

/**
 * Adds `count` stored events (each with its change row, a small Patient body) numbered after
 * what subscription subId already has, and moves its events_since_start on: the tables grow
 * as years of traffic would make them.
 */
export async function seedEvents(ctx, subId, count, { batch = 100_000 } = {}) {
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    const base = Number((await ctx.query(`SELECT events_since_start FROM fhirsub_sub_counter WHERE subscription_id = ${sqlText(subId)}`))[0][0]);
    const now = Date.now();
    const changeId = `'seed-${subId}-' || CAST(n_.i + ${base} AS VARCHAR(20))`;
    const body = `'{"resourceType":"Patient","id":"seed-' || CAST(n_.i AS VARCHAR(20)) || '"}'`;
    await ctx.query(
      `${series(n)} INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id,` +
        ` interaction, request_method, request_url, response_status, body)` +
        ` SELECT ${changeId}, ${now}, 'Patient', 'seed-' || CAST(n_.i AS VARCHAR(20)), '1', 'create', 'POST',` +
        ` 'Patient', '201', ${body} FROM n_`,
    );
    await ctx.query(
      `${series(n)} INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms)` +
        ` SELECT ${sqlText(subId)}, n_.i + ${base}, ${changeId}, ${now} FROM n_`,
    );
    await ctx.query(`UPDATE fhirsub_sub_counter SET events_since_start = ${base + n} WHERE subscription_id = ${sqlText(subId)}`);
  }
}

// ---- reporting ----------------------------------------------------------------------------

function fmt(n) {
  if (!Number.isFinite(n)) return String(n);
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2);
}

function loadAverage() {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/**
 * Prints one figure next to its same-run baseline, the ratio, and whether each target is met;
 * appends it as a JSON line to $BENCH_RESULTS (bench/run's summary reads them).
 *   item ('1', '4', '5-http', ...), name, value, unit, baseline {name, value},
 *   targets [{text, met}] (none: informational), commands [strings], note.
 * Returns the record.
 */
export function report({ item, name, value, unit, baseline, targets = [], commands = [], note }) {
  const db = benchSettings().db;
  const ratio = baseline && baseline.value ? value / baseline.value : null;
  const met = targets.length ? targets.every((t) => t.met) : null;
  const record = { item, db, name, value, unit, baseline, ratio, targets, met, commands, note, load: loadAverage(), at: new Date().toISOString() };
  const verdict = met === null ? 'info' : met ? 'MET' : 'MISSED';
  console.log(`[${db}] ${item} ${name}: ${fmt(value)} ${unit}`);
  if (baseline) console.log(`    baseline ${baseline.name}: ${fmt(baseline.value)} ${unit}  ratio ${ratio.toFixed(3)}`);
  for (const t of targets) console.log(`    target ${t.text}: ${t.met ? 'met' : 'MISSED'}`);
  if (note) console.log(`    note: ${note}`);
  console.log(`    => ${verdict}   (load average ${record.load})`);
  if (process.env.BENCH_RESULTS) fs.appendFileSync(process.env.BENCH_RESULTS, `${JSON.stringify(record)}\n`);
  return record;
}

/** Runs main(), prints a failure with its stack and sets the exit status; stops what it started. */
export async function runBench(main) {
  try {
    await main();
  } catch (err) {
    console.error(`bench failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  }
}
