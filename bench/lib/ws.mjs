// Shared by the websocket benchmarks (bench/02-latency, 03-fanout, 05-scaling-ws): the
// benches' stack (bench.mjs: httpd + mod_fhirsub + the Medplum backend, SQLite or
// PostgreSQL, 127.0.0.1 only) with Basic auth and the notifier, its limits raised; tokens for
// many subscriptions; runs of the C load generator bench/wsload/wsload, whose JSON report
// comes back as an object.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { backportBody, param, sqlString, TOPIC, USERS } from '../../tests/integration/lib/fhirsub.mjs';
import { mintToken, notifierProblems, startNotifier, tokenClaims } from '../../tests/integration/lib/notifier.mjs';
import { capture, makeTempDir, removeDir } from '../../tests/integration/lib/util.mjs';
import { benchSettings, BENCH_DIR, createSubscription, request, startBenchStack } from './bench.mjs';

export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const WSLOAD = path.join(BENCH_DIR, 'wsload/wsload');
export const USER = 'alice';
export const AUTH = `${USER}:${USERS[USER]}`;
export const QUICK = benchSettings().quick;

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
    LogLevel: 'notice', // startNotifier waits for its notice "database ready"
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
  return startNotifier({ stack: ctx.stack, keyFile: ctx.keyFile, config: benchNotifierConfig({ clients }) });
}

/**
 * Runs fn(ctx, cleanups) on a fresh stack: startBenchStack with Basic auth (USER owns the
 * subscriptions) and the notifier with room for `clients` connections (wss with tls:
 * {cert, key}). Then runs the cleanups, prints the notifier's warnings and errors, and
 * stops everything.
 */
export async function withStack({ clients = 100, tls, notifierConfig } = {}, fn) {
  const ctx = await startBenchStack({ auth: true, notifier: true, notifierConfig: benchNotifierConfig({ clients, tls, notifierConfig }) });
  const cleanups = [];
  try {
    return await fn(ctx, cleanups);
  } finally {
    for (const c of cleanups) c();
    const problems = notifierProblems(ctx.nt.log());
    if (problems.length) console.log(`notifier warnings and errors:\n${problems.slice(0, 12).join('\n')}`);
    await ctx.stop();
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
  return createSubscription(ctx.fhirUrl, patientSubBody(opts), { user: USER });
}

/** $get-ws-binding-token through httpd for the given subscription ids. */
export async function apiToken(ctx, ids) {
  const res = await request(`${ctx.fhirUrl}/Subscription/$get-ws-binding-token?${ids.map((id) => `id=${id}`).join('&')}`, { user: USER });
  if (res.status !== 200) throw new Error(`$get-ws-binding-token: ${res.status} ${res.text}`);
  return param(res.body, 'token').valueString;
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
    await ctx.query([
      'BEGIN;',
      `INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms) VALUES ${values(g.map((id) => `(${sqlString(id)}, ${sqlString(USER)}, ${now}, ${now + lifetime * 1000}, 0)`))};`,
      `INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id) VALUES ${values(g.map((id, k) => `(${sqlString(id)}, ${sqlString(s[k])})`))};`,
      'COMMIT;',
    ].join('\n'));
  }
  return grants.map((jti, i) => mintToken(ctx.keyFile, tokenClaims({ user: USER, jti, subscriptions: [ids[i]], lifetime })));
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
    const base = o.http === 'backend' ? ctx.stack.backend.url : ctx.baseUrl;
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

// ---- printing --------------------------------------------------------------------------

export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
export const dist = (d) => `p50 ${fmt(d.p50)} ms, p99 ${fmt(d.p99)} ms, max ${fmt(d.max)} ms (n = ${d.n})`;

export function header(title) {
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\n## ${title} — ${benchSettings().db}, ${new Date().toISOString()}, load average ${load}`);
}
