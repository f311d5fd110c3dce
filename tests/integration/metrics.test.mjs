// fhirsub-notifier's health check and Prometheus metrics: GET /healthz and /metrics on the
// websocket listener (default), on MetricsListen, or nowhere; the numbers follow real clients
// (httpd + mod_fhirsub issue the tokens, writes through httpd make the events): connections,
// bindings, binds, deliveries, their lag, a client whose queue is full, wake-ups; the health
// check turns 503 while the database is unavailable and 200 once it is back.
// Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backportBody, createSub, randomSecret, TOPIC } from './lib/fhirsub.mjs';
import { IDENT_SYSTEM, bindSubscriber, patientBody, startEventStack, tokenFor, uniq, write } from './lib/events.mjs';
import { NOTIFIER_BIN, rawWsConnect, recordEvents, sendWake, startNotifier, wsFrame } from './lib/notifier.mjs';
import { startPostgres } from './lib/pg.mjs';
import { freePort } from './lib/ports.mjs';
import { isRoot, makeTempDir, onProcessExit, readFileOr, removeDir, signalProcess, sleep, tail, waitFor } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const EXPOSITION_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const FAMILIES = [
  'fhirsub_notifier_info',
  'fhirsub_notifier_start_time_seconds',
  'fhirsub_notifier_connections',
  'fhirsub_notifier_connections_total',
  'fhirsub_notifier_upgrades_refused_total',
  'fhirsub_notifier_bindings',
  'fhirsub_notifier_bindings_waiting',
  'fhirsub_notifier_subscriptions_bound',
  'fhirsub_notifier_events_pending',
  'fhirsub_notifier_send_queue_messages',
  'fhirsub_notifier_send_queue_bytes',
  'fhirsub_notifier_binds_total',
  'fhirsub_notifier_messages_sent_total',
  'fhirsub_notifier_events_delivered_total',
  'fhirsub_notifier_delivery_lag_seconds',
  'fhirsub_notifier_slow_clients_total',
  'fhirsub_notifier_wakeups_total',
  'fhirsub_notifier_database_up',
  'fhirsub_notifier_database_errors_total',
  'fhirsub_notifier_database_jobs_queued',
];

let ctx;

before(async () => {
  // A small send queue that a client which stops reading fills quickly; it is not cut off
  // while the test looks at it.
  ctx = await startEventStack({
    notifierConfig: { SendQueueMessages: 8, SendQueueBytes: 65536, SlowClientTimeout: 120 },
    notifierAllow: [/FS20008: lws: User code denied connection/], // the refused upgrade
  });
});

after(async () => {
  await ctx?.stop();
});

// ---- scraping ------------------------------------------------------------------------

async function get(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/**
 * Parses the text exposition format strictly: HELP and TYPE once per family, before its
 * samples; sample names of the family (histograms: _bucket, _sum, _count); numeric values.
 * Resolves to {families: {name: type}, value(name, labels = '')}.
 */
function parseExposition(text) {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const families = {};
  const help = {};
  const samples = new Map();
  let current = null;
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP ([a-z_:][a-z0-9_:]*) (.+)$/.exec(line))) {
      assert.ok(!help[m[1]], `HELP of ${m[1]} once`);
      help[m[1]] = m[2];
      current = m[1];
    } else if ((m = /^# TYPE ([a-z_:][a-z0-9_:]*) (counter|gauge|histogram)$/.exec(line))) {
      assert.equal(m[1], current, `TYPE of ${m[1]} right after its HELP`);
      families[m[1]] = m[2];
    } else if ((m = /^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line))) {
      const [, name, labels = '', value] = m;
      const base = families[current] === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name;
      assert.equal(base, current, `sample ${name} under its own family`);
      if (families[current] === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
      assert.ok(Number.isFinite(Number(value)), `${line}: numeric value`);
      assert.ok(!samples.has(name + labels), `${name}${labels} once`);
      samples.set(name + labels, Number(value));
    } else {
      assert.fail(`not exposition format: ${JSON.stringify(line)}`);
    }
  }
  return {
    families,
    value(name, labels = '') {
      assert.ok(samples.has(name + labels), `sample ${name}${labels}`);
      return samples.get(name + labels);
    },
  };
}

function metricsUrl(port) {
  return `http://127.0.0.1:${port}/metrics`;
}

async function scrape(port = ctx.nt.port) {
  const res = await get(metricsUrl(port));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.type, EXPOSITION_TYPE);
  return parseExposition(res.text);
}

/** The UDP wake-up port of the stack's notifier (SQLite). */
function wakePort() {
  return Number(/^WakeListen 127\.0\.0\.1:(\d+)$/m.exec(fs.readFileSync(ctx.nt.configFile, 'utf8'))[1]);
}

const sent = (m, type) => m.value('fhirsub_notifier_messages_sent_total', `{type="${type}"}`);
const binds = (m, result) => m.value('fhirsub_notifier_binds_total', `{result="${result}"}`);

/** Waits until check(scrape) holds; resolves to that scrape. */
async function scrapeUntil(check, what) {
  let last;
  await waitFor(async () => check((last = await scrape())), { what, timeoutMs: 15_000 });
  return last;
}

// ---- on the websocket listener ---------------------------------------------------------

describe('on the websocket listener', () => {
  test('every family in the text exposition format, HELP and TYPE first', async () => {
    const m = await scrape();
    for (const name of FAMILIES) assert.ok(m.families[name], `family ${name}`);
    assert.equal(m.value('fhirsub_notifier_info', `{version="0.1.0",database="${ctx.stack.db}"}`), 1);
    assert.equal(m.value('fhirsub_notifier_database_up'), 1);
    const started = m.value('fhirsub_notifier_start_time_seconds');
    assert.ok(started <= Date.now() / 1000 && started > Date.now() / 1000 - 600, `start time ${started}`);
    // buckets are cumulative and end at +Inf = count
    const les = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf'];
    const counts = les.map((le) => m.value('fhirsub_notifier_delivery_lag_seconds_bucket', `{le="${le}"}`));
    assert.deepEqual([...counts].sort((a, b) => a - b), counts);
    assert.equal(counts.at(-1), m.value('fhirsub_notifier_delivery_lag_seconds_count'));
  });

  test('/healthz answers ok; other paths and methods do not serve', async () => {
    const health = await get(`http://127.0.0.1:${ctx.nt.port}/healthz`);
    assert.deepEqual([health.status, health.text], [200, 'ok\n']);
    assert.equal((await get(`http://127.0.0.1:${ctx.nt.port}/nothing`)).status, 404);
    const post = await fetch(metricsUrl(ctx.nt.port), { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    await post.arrayBuffer();
    // through Apache only the websocket path is proxied
    assert.equal((await get(`${ctx.stack.httpd.baseUrl}/metrics`)).status, 404);
  });

  test('connections, bindings, binds, deliveries, lag and wake-ups follow real clients', async () => {
    const ident = uniq('metrics');
    const sub = await createSub(ctx.r4.alice, backportBody({ topic: TOPIC.patientChange, filters: [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], content: 'id-only', heartbeat: null, maxCount: null }));
    const token = await tokenFor(ctx.r4.alice, sub.id);
    const m0 = await scrape();
    const d = (m, name, labels) => m.value(name, labels) - m0.value(name, labels);

    const a = await bindSubscriber(ctx.nt.url, token, [sub.id]);
    const m1 = await scrapeUntil((m) => d(m, 'fhirsub_notifier_bindings') === 1, 'one binding');
    assert.equal(d(m1, 'fhirsub_notifier_connections'), 1);
    assert.equal(d(m1, 'fhirsub_notifier_connections_total'), 1);
    assert.equal(d(m1, 'fhirsub_notifier_subscriptions_bound'), 1);
    assert.equal(binds(m1, 'bound') - binds(m0, 'bound'), 1);
    assert.equal(sent(m1, 'handshake') - sent(m0, 'handshake'), 1);

    // a second connection binding the same subscription
    const b = await bindSubscriber(ctx.nt.url, token, [sub.id]);
    const m2 = await scrapeUntil((m) => d(m, 'fhirsub_notifier_bindings') === 2, 'two bindings');
    assert.equal(d(m2, 'fhirsub_notifier_connections'), 2);
    assert.equal(d(m2, 'fhirsub_notifier_subscriptions_bound'), 1, 'one subscription, bound twice');

    // a write through httpd: both get the event; the write to each socket is counted first
    await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
    await a.next(sub.id);
    await b.next(sub.id);
    const m3 = await scrape();
    assert.equal(sent(m3, 'event-notification') - sent(m0, 'event-notification'), 2, 'two deliveries');
    assert.equal(d(m3, 'fhirsub_notifier_events_delivered_total'), 2);
    assert.equal(d(m3, 'fhirsub_notifier_delivery_lag_seconds_count'), 2);
    const lag = d(m3, 'fhirsub_notifier_delivery_lag_seconds_sum');
    assert.ok(lag > 0 && lag < 20, `lag of the two deliveries: ${lag} s`);
    assert.equal(d(m3, 'fhirsub_notifier_delivery_lag_seconds_bucket', '{le="60"}'), 2);
    assert.ok(d(m3, 'fhirsub_notifier_wakeups_total') >= 1, 'the write woke the notifier (UDP or NOTIFY)');
    assert.equal(d(m3, 'fhirsub_notifier_events_pending'), 0);

    // a refused bind and a refused upgrade
    const bad = await connectWs(ctx.nt.url);
    bad.send('bind-with-token not.a.token');
    await waitFor(() => bad.closeInfo() !== null, { what: 'the refused client closed' });
    await assert.rejects(connectWs(`ws://127.0.0.1:${ctx.nt.port}/elsewhere`), /refused|hang up/);
    const m4 = await scrapeUntil((m) => binds(m, 'refused') - binds(m0, 'refused') === 1, 'one refused bind');
    assert.ok(d(m4, 'fhirsub_notifier_upgrades_refused_total') >= 1);

    await a.close();
    await b.close();
    await scrapeUntil((m) => d(m, 'fhirsub_notifier_connections') === 0 && d(m, 'fhirsub_notifier_bindings') === 0, 'connections and bindings back');
  });

  test('a client that stops reading: its send queue fills, events wait pending, then drain', async () => {
    const sub = await createSub(ctx.r4.alice, backportBody({ heartbeat: null, content: 'full-resource', maxCount: null }));
    const token = await tokenFor(ctx.r4.alice, sub.id);
    const slow = await rawWsConnect(ctx.nt.port);
    slow.write(wsFrame(`bind-with-token ${token}`));
    const m0 = await scrapeUntil((m) => m.value('fhirsub_notifier_bindings') >= 1, 'the slow client bound');
    // ~13 MB for a client that reads nothing: kernel buffers fill, then the queue (8 messages)
    await recordEvents(ctx.stack, sub.id, 200, { size: 65536 });
    if (ctx.stack.db === 'sqlite3') await sendWake(wakePort(), sub.id); // pgsql: NOTIFY inside
    const full = await scrapeUntil(
      (m) => m.value('fhirsub_notifier_bindings_waiting') === 1 && m.value('fhirsub_notifier_events_pending') > 0,
      'a binding waiting for room, events pending',
    );
    assert.ok(full.value('fhirsub_notifier_send_queue_messages') >= 1);
    assert.ok(full.value('fhirsub_notifier_send_queue_bytes') > 0);
    assert.ok(full.value('fhirsub_notifier_events_pending') <= 200);
    // reading again drains everything: nothing waits, nothing pending, 200 events delivered
    let bytes = 0;
    slow.on('data', (chunk) => (bytes += chunk.length));
    slow.resume();
    const drained = await scrapeUntil(
      (m) => m.value('fhirsub_notifier_events_pending') === 0 && m.value('fhirsub_notifier_bindings_waiting') === 0 && m.value('fhirsub_notifier_send_queue_messages') === 0,
      'the backlog drained',
    );
    assert.equal(drained.value('fhirsub_notifier_events_delivered_total') - m0.value('fhirsub_notifier_events_delivered_total'), 200);
    assert.equal(drained.value('fhirsub_notifier_slow_clients_total'), m0.value('fhirsub_notifier_slow_clients_total'));
    assert.ok(bytes > 200 * 65536);
    slow.destroy();
  });
});

// ---- MetricsListen and the database's health ----------------------------------------------

/** The notifier started by hand (startNotifier waits for a database it may not have here). */
function spawnNotifier(dir, options) {
  const key = path.join(dir, 'token.key');
  fs.writeFileSync(key, randomSecret(48), { mode: 0o644 });
  const exe = path.join(dir, 'fhirsub-notifier');
  fs.copyFileSync(NOTIFIER_BIN, exe);
  fs.chmodSync(exe, 0o755);
  const logFile = path.join(dir, 'notifier.log');
  const out = fs.openSync(logFile, 'a');
  const ids = isRoot() ? { uid: fs.statSync(dir).uid, gid: fs.statSync(dir).gid } : {};
  const args = Object.entries({ TokenKey: `HS256 ${key}`, LogLevel: 'info', ...options }).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  const child = spawn(exe, args, { stdio: ['ignore', out, out], ...ids });
  fs.closeSync(out);
  child.unref();
  let exited = false;
  const done = new Promise((resolve) => child.once('exit', () => resolve((exited = true))));
  const unregister = onProcessExit(() => signalProcess(child.pid, 'SIGKILL'));
  return {
    log: () => readFileOr(logFile),
    exited: () => exited,
    async stop() {
      if (!exited) signalProcess(child.pid, 'SIGTERM');
      await Promise.race([done, sleep(10_000)]);
      if (!exited) signalProcess(child.pid, 'SIGKILL');
      unregister();
    },
  };
}

/** A directory the notifier's user (www-data as root) owns. */
function ownedDir(prefix) {
  const dir = makeTempDir(prefix);
  if (isRoot()) {
    const id = (flag) => Number(spawnSync('id', [flag, 'www-data'], { encoding: 'utf8' }).stdout.trim());
    fs.chownSync(dir, id('-u'), id('-g'));
  }
  return dir;
}

describe('MetricsListen', () => {
  test('a listener of its own: served there, not on the websocket port', async () => {
    const metricsPort = await freePort();
    const nt = await startNotifier({ stack: ctx.stack, keyFile: ctx.key.keyFile, config: { MetricsListen: `127.0.0.1:${metricsPort}` } });
    try {
      const m = await scrape(metricsPort);
      assert.equal(m.value('fhirsub_notifier_database_up'), 1);
      assert.equal((await get(`http://127.0.0.1:${metricsPort}/healthz`)).text, 'ok\n');
      assert.equal((await get(metricsUrl(nt.port))).status, 404);
      assert.equal((await get(`http://127.0.0.1:${nt.port}/healthz`)).status, 404);
      // the websocket listener still upgrades
      const ws = await connectWs(nt.url);
      await ws.close();
      await waitFor(async () => (await scrape(metricsPort)).value('fhirsub_notifier_connections_total') === 1, { what: 'the connection counted' });
    } finally {
      await nt.stop();
    }
  });

  test('none: neither /metrics nor /healthz', async () => {
    const nt = await startNotifier({ stack: ctx.stack, keyFile: ctx.key.keyFile, config: { MetricsListen: 'none' } });
    try {
      assert.equal((await get(metricsUrl(nt.port))).status, 404);
      assert.equal((await get(`http://127.0.0.1:${nt.port}/healthz`)).status, 404);
    } finally {
      await nt.stop();
    }
  });
});

describe('health while the database is away', () => {
  test('503 while the SQLite file cannot be opened, 200 once it can', async () => {
    const dir = ownedDir('fhirsub-health-');
    const port = await freePort();
    const missing = path.join(dir, 'not-yet');
    const nt = spawnNotifier(dir, { DBDriver: 'sqlite3', DBParams: path.join(missing, 'fhirsub.db'), Listen: `127.0.0.1:${port}` });
    try {
      await waitFor(async () => (await get(`http://127.0.0.1:${port}/healthz`).catch(() => ({}))).status === 503, { what: `503 from /healthz\n${tail(nt.log())}` });
      const down = await get(`http://127.0.0.1:${port}/healthz`);
      assert.equal(down.text, 'database unavailable\n');
      const m = await scrape(port);
      assert.equal(m.value('fhirsub_notifier_database_up'), 0);
      assert.ok(m.value('fhirsub_notifier_database_errors_total') >= 1);
      assert.match(nt.log(), /FS20103: database \(sqlite3\) unavailable/);
      // the directory appears: the worker connects on its own, without any client
      fs.mkdirSync(missing);
      if (isRoot()) fs.chownSync(missing, fs.statSync(dir).uid, fs.statSync(dir).gid);
      await waitFor(async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 200, { what: `200 from /healthz\n${tail(nt.log())}` });
      assert.equal((await scrape(port)).value('fhirsub_notifier_database_up'), 1);
      assert.match(nt.log(), /FS20104: database ready \(sqlite3\) again/);
    } finally {
      await nt.stop();
      removeDir(dir);
    }
  });

  test('PostgreSQL going away is noticed without any client (probe), 503', async (t) => {
    if (ctx.stack.db !== 'pgsql') return t.skip('PostgreSQL only (FHIRSUB_DB=pgsql): a SQLite file does not go away under an open handle');
    const dir = ownedDir('fhirsub-health-pg-');
    const pg = await startPostgres(path.join(dir, 'pg')); // its own: this one is stopped
    const port = await freePort();
    const nt = spawnNotifier(dir, { DBDriver: 'pgsql', DBParams: `${pg.conninfo} connect_timeout=2`, Listen: `127.0.0.1:${port}` });
    try {
      await waitFor(async () => (await get(`http://127.0.0.1:${port}/healthz`).catch(() => ({}))).status === 200, { what: `200 from /healthz\n${tail(nt.log())}` });
      // past the worker's first rounds (its first sweep of unbound subscriptions queries
      // too): from now on only the idle probe asks the database anything
      await sleep(2000);
      const from = nt.log().length;
      await pg.stop();
      await waitFor(async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 503, { what: `503 once PostgreSQL stopped\n${tail(nt.log())}`, timeoutMs: 20_000 });
      assert.equal((await get(`http://127.0.0.1:${port}/healthz`)).text, 'database unavailable\n');
      assert.equal((await scrape(port)).value('fhirsub_notifier_database_up'), 0);
      assert.match(nt.log().slice(from), /FS20103: database \(pgsql\) unavailable: probe/);
      // libpq's own messages come as numbered lines too
      assert.deepEqual(nt.log().slice(from).split('\n').filter((l) => l && !/^\S+Z \[\w+\] FS\d{5}: /.test(l) && !/^\s/.test(l)), []);
    } finally {
      await nt.stop();
      await pg.stop();
      removeDir(dir);
    }
  });
});
