// Shared by the websocket benchmarks (bench/20-latency, bench/30-fanout, bench/51-scaling-ws):
// the stack of the integration tests (httpd + mod_fhirsub + the Medplum backend + the
// notifier, SQLite or PostgreSQL, 127.0.0.1 only) with the notifier's limits raised, bulk
// set-up of subscriptions, grants and stored events, and runs of the C load generator
// bench/wsload/wsload, whose JSON report comes back as an object.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEventStack } from '../../tests/integration/lib/events.mjs';
import { backportBody, createSub, param, sqlString, TOPIC, USERS } from '../../tests/integration/lib/fhirsub.mjs';
import { mintToken, startNotifier, tokenClaims } from '../../tests/integration/lib/notifier.mjs';
import { psql } from '../../tests/integration/lib/pg.mjs';
import { sqlite } from '../../tests/integration/lib/sqlite.mjs';
import { capture, makeTempDir, removeDir } from '../../tests/integration/lib/util.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WSLOAD = path.join(REPO_ROOT, 'bench/wsload/wsload');
export const USER = 'alice';
export const AUTH = `${USER}:${USERS[USER]}`;
export const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

export function dbKind() {
  const db = process.env.FHIRSUB_DB ?? 'sqlite3';
  if (db !== 'sqlite3' && db !== 'pgsql') throw new Error(`FHIRSUB_DB must be sqlite3 or pgsql, not ${db}`);
  return db;
}

/** Builds the load generator if it is missing or older than its sources. */
export async function buildWsload() {
  const dir = path.join(REPO_ROOT, 'bench/wsload');
  const newest = Math.max(...fs.readdirSync(dir).filter((f) => /\.[ch]$/.test(f)).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
  if (fs.existsSync(WSLOAD) && fs.statSync(WSLOAD).mtimeMs >= newest) return;
  const res = await capture('make', ['-C', REPO_ROOT, 'bench/wsload/wsload'], { timeoutMs: 120_000 });
  if (res.code !== 0) throw new Error(`cannot build wsload:\n${res.stdout}${res.stderr}`);
}

/** The notifier's configuration in the benchmarks: room for `clients`, defaults otherwise. */
function benchNotifierConfig({ clients, tls, notifierConfig = {} }) {
  return {
    LogLevel: 'notice',
    MaxConnections: clients + 64,
    // a client of the benchmark reads everything at once: the defaults stay, except the
    // keepalive ping, which would only add traffic to idle measurements, and the time an
    // unbound connection (a baseline) may stay
    PingInterval: 600,
    BindTimeout: 600,
    ...(tls ? { TLSCertificate: tls.cert, TLSKey: tls.key } : {}),
    ...notifierConfig,
  };
}

/**
 * A second, fresh notifier on the stack's database (nothing allocated yet, for a memory
 * baseline): the handle of tests/integration/lib/notifier.mjs.
 */
export function startFreshNotifier(ctx, { clients }) {
  return startNotifier({ stack: ctx.stack, keyFile: ctx.key.keyFile, config: benchNotifierConfig({ clients }) });
}

/**
 * The stack: httpd (R4 base /fhir/R4 proxied to the backend, capture on, UDP wake-ups on
 * SQLite) + the notifier with room for `clients` connections. Resolves to the context of
 * tests/integration/lib/events.mjs plus {stopQuietly()}, which stops everything and returns
 * the warnings the logs held instead of failing.
 */
export async function startWsStack({ clients = 100, tls, notifierConfig = {} } = {}) {
  const ctx = await startEventStack({ notifierConfig: benchNotifierConfig({ clients, tls, notifierConfig }) });
  ctx.stopQuietly = async () => {
    try {
      await ctx.stop();
      return [];
    } catch (err) {
      return [String(err.message).split('\n').slice(0, 12).join('\n')];
    }
  };
  return ctx;
}

/**
 * Runs fn(ctx, cleanups) on a fresh stack (startWsStack(opts)); then runs the cleanups,
 * stops the stack and prints what its logs warned about.
 */
export async function withStack(opts, fn) {
  const ctx = await startWsStack(opts);
  const cleanups = [];
  try {
    return await fn(ctx, cleanups);
  } finally {
    for (const c of cleanups) c();
    const problems = await ctx.stopQuietly();
    if (problems.length) console.log(`log warnings: ${problems.join('\n')}`);
  }
}

/** A self-signed certificate for wss:// in a temp dir: {cert, key, cleanup()}. */
export async function selfSignedCert() {
  const dir = makeTempDir('fhirsub-bench-tls-');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const res = await capture('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1']);
  if (res.code !== 0) throw new Error(`openssl: ${res.stderr}`);
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(key, 0o644); // read by the notifier running as www-data
  return { cert, key, cleanup: () => removeDir(dir) };
}

/** An R4 backport subscription of alice on patient-change (id-only, max count 1, no heartbeat). */
export function patientSubBody({ filters = [] } = {}) {
  return backportBody({ topic: TOPIC.patientChange, filters, content: 'id-only', heartbeat: null, maxCount: null, reason: 'benchmark' });
}

export async function createPatientSub(ctx, opts) {
  return createSub(ctx.r4[USER], patientSubBody(opts));
}

/** $get-ws-binding-token through httpd for the given subscription ids. */
export async function apiToken(ctx, ids) {
  const res = await ctx.r4[USER].get(`Subscription/$get-ws-binding-token?${ids.map((id) => `id=${id}`).join('&')}`);
  if (res.status !== 200) throw new Error(`$get-ws-binding-token: ${res.status} ${res.text}`);
  return param(res.body, 'token').valueString;
}

async function sql(ctx, text, opts = { timeoutMs: 60_000 }) {
  if (ctx.stack.db === 'pgsql') await psql(ctx.stack.pg.conninfo, text, opts);
  else await sqlite(ctx.stack.httpd.dbFile, text, opts);
}

function seq(n) {
  return `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})`;
}

const SUB_COLUMNS = [
  'owner', 'status', 'channel_type', 'shape', 'topic', 'criteria', 'filters', 'content', 'content_type',
  'heartbeat_period', 'timeout', 'max_count', 'end_ms', 'base_url', 'events_since_start', 'last_delivery_ms',
  'error', 'version_id', 'created_ms', 'updated_ms', 'last_bound_ms', 'resource',
];

/**
 * n copies of an existing subscription row (made through the API), ids `<prefix>-<i>`, in one
 * statement: the API would take minutes for 10,000. Resolves to the ids.
 */
export async function cloneSubs(ctx, templateId, n, prefix = `bench-${crypto.randomUUID().slice(0, 8)}`) {
  if (n <= 0) return [];
  const cols = SUB_COLUMNS.join(', ');
  await sql(ctx, `${seq(n)} INSERT INTO fhirsub_subscription (id, ${cols}) SELECT '${prefix}-' || i, ${cols} FROM fhirsub_subscription, seq WHERE id = ${sqlString(templateId)};`);
  return Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
}

/**
 * One grant per subscription, inserted as $get-ws-binding-token does (one statement per
 * table), and its token minted with the module's key and claims (tokenClaims). Resolves to
 * the tokens, in the order of ids.
 */
export async function seedTokens(ctx, ids, { lifetime = 3600 } = {}) {
  if (!ids.length) return [];
  const now = Date.now();
  const grants = ids.map(() => crypto.randomUUID());
  const values = (rows) => rows.join(',\n');
  // a command-line argument holds at most 128 KiB (the SQL travels as one)
  for (let i = 0; i < ids.length; i += 400) {
    const g = grants.slice(i, i + 400);
    const s = ids.slice(i, i + 400);
    await sql(ctx, [
      'BEGIN;',
      `INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms) VALUES ${values(g.map((id) => `(${sqlString(id)}, ${sqlString(USER)}, ${now}, ${now + lifetime * 1000}, 0)`))};`,
      `INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id) VALUES ${values(g.map((id, k) => `(${sqlString(id)}, ${sqlString(s[k])})`))};`,
      'COMMIT;',
    ].join('\n'));
  }
  return grants.map((jti, i) => mintToken(ctx.key.keyFile, tokenClaims({ user: USER, jti, subscriptions: [ids[i]], lifetime })));
}

/**
 * n more stored events (with their change rows) on a subscription, numbered on from its
 * events-since-start as the recorder numbers them, in statements of at most 200,000 rows and
 * without a wake-up: the "stored events" axis of the scaling curve. A client bound later is
 * told the new count by its handshake and gets what follows.
 */
export async function seedEvents(ctx, subId, n) {
  const prefix = crypto.randomUUID();
  const now = Date.now();
  const since = `(SELECT events_since_start FROM fhirsub_subscription WHERE id = ${sqlString(subId)})`;
  for (let done = 0; done < n; done += 200_000) {
    const k = Math.min(200_000, n - done);
    await sql(ctx, [
      'BEGIN;',
      `${seq(k)} INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id, interaction, request_method, request_url, response_status, body) SELECT '${prefix}-${done}-' || i, ${now}, 'Patient', 'seed-' || i, '1', 'update', 'PUT', 'Patient/seed-' || i, '200', '{"resourceType":"Patient","id":"seed-' || i || '"}' FROM seq;`,
      `${seq(k)} INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms) SELECT ${sqlString(subId)}, ${since} + i, '${prefix}-${done}-' || i, ${now} FROM seq;`,
      `UPDATE fhirsub_subscription SET events_since_start = events_since_start + ${k} WHERE id = ${sqlString(subId)};`,
      'COMMIT;',
    ].join('\n'), { timeoutMs: 300_000 });
  }
}

/** Writes tokens one per line to a temp file: {file, cleanup()}. */
export function tokenFile(tokens) {
  const dir = makeTempDir('fhirsub-bench-tokens-');
  const file = path.join(dir, 'tokens');
  fs.writeFileSync(file, `${tokens.join('\n')}\n`, { mode: 0o600 });
  return { file, cleanup: () => removeDir(dir) };
}

/**
 * Runs wsload; resolves to its JSON report (with .exitCode, .stderr, .command). opts: clients,
 * tokens (file), noBind (clients stay unbound), nt (another notifier than ctx.nt), tls,
 * http ('httpd' | 'backend' | null), writes, rate, writers, warmup, expect, rssPid, drain,
 * timeout (s), settle.
 */
export async function runWsload(ctx, o) {
  const args = [];
  if (o.clients) {
    args.push('--ws', `127.0.0.1:${(o.nt ?? ctx.nt).port}`, '--clients', String(o.clients));
    args.push(...(o.noBind ? ['--no-bind'] : ['--tokens', o.tokens]));
    if (o.tls) args.push('--tls');
  }
  if (o.writes) {
    const base = o.http === 'backend' ? ctx.stack.backend.url : ctx.stack.httpd.baseUrl;
    args.push('--http', base.replace(/^http:\/\//, '').replace(/\/.*$/, ''), '--http-path', `${ctx.stack.fhirPath}/Patient`);
    if (o.http !== 'backend') args.push('--auth', AUTH);
    args.push('--writes', String(o.writes), '--rate', String(o.rate ?? 0), '--writers', String(o.writers ?? 4));
    if (o.warmup) args.push('--warmup', String(o.warmup));
    if (o.expect) args.push('--expect', String(o.expect));
  }
  if (o.rssPid) args.push('--rss-pid', String(o.rssPid));
  if (o.settle !== undefined) args.push('--settle', String(o.settle));
  args.push('--drain', String(o.drain ?? 10), '--timeout', String(o.timeout ?? 240));
  const res = await capture(WSLOAD, args, { timeoutMs: ((o.timeout ?? 240) + 30) * 1000 });
  let report;
  try {
    report = JSON.parse(res.stdout);
  } catch {
    throw new Error(`wsload ${args.join(' ')} exited ${res.code} without a report:\n${res.stdout.slice(0, 2000)}\n${res.stderr.slice(-2000)}`);
  }
  report.exitCode = res.code;
  report.stderr = res.stderr;
  report.command = `bench/wsload/wsload ${args.join(' ')}`;
  return report;
}

// ---- reporting -----------------------------------------------------------------------

export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
export const dist = (d) => `p50 ${fmt(d.p50)} ms, p99 ${fmt(d.p99)} ms, max ${fmt(d.max)} ms (n = ${d.n})`;

function loadAverage() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function header(title) {
  console.log(`\n## ${title} — ${dbKind()}, ${new Date().toISOString()}, load average ${loadAverage()}`);
}

/**
 * Prints one figure with its baseline (same run), the ratio and each target, and appends
 * it to $BENCH_RESULTS as one JSON line (the record bench/run summarises).
 */
export function report({ item, name, value, unit, baseline, targets = [], commands = [], note }) {
  const db = dbKind();
  const ratio = baseline && baseline.value ? value / baseline.value : null;
  const met = targets.length ? targets.every((t) => t.met) : null;
  const record = { item, db, name, value, unit, baseline, ratio, targets, met, commands, note, load: loadAverage(), at: new Date().toISOString() };
  console.log(`[${db}] ${item} ${name}: ${fmt(value)} ${unit}`);
  if (baseline) console.log(`    baseline ${baseline.name}: ${fmt(baseline.value)} ${unit}${ratio === null ? '' : `  ratio ${ratio.toFixed(3)}`}`);
  for (const t of targets) console.log(`    target ${t.text}: ${t.met ? 'met' : 'MISSED'}`);
  if (note) console.log(`    note: ${note}`);
  if (process.env.BENCH_RESULTS) fs.appendFileSync(process.env.BENCH_RESULTS, `${JSON.stringify(record)}\n`);
  return record;
}
