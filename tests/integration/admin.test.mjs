// fhirsub-admin end to end: real httpd + mod_fhirsub make the rows (subscriptions and
// grants through the HTTP API, events from Patients written through the FHIR base), the
// built tool reads and changes them in the same database; assertions read the database
// directly. Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  REPO_ROOT,
  backportBody,
  classicBody,
  clientsFor,
  createSub,
  decodeJwt,
  fhirsubDirectives,
  makeKeyDir,
  param,
  sqlString,
  stopAndCheckLog,
  subRow,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';
import { conninfoFor, psql, psqlRows } from './lib/pg.mjs';
import { freePort } from './lib/ports.mjs';
import { sqliteRows } from './lib/sqlite.mjs';
import { startStack } from './lib/stack.mjs';
import { DEFAULT_TIMEOUT_MS, capture, isRoot, makeTempDir, waitFor } from './lib/util.mjs';

const ADMIN_BIN = process.env.FHIRSUB_ADMIN || path.join(REPO_ROOT, 'admin/fhirsub-admin');
const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;

let stack;
let key;
let clients;

before(async () => {
  assert.ok(fs.existsSync(ADMIN_BIN), `fhirsub-admin not built: ${ADMIN_BIN} (run make)`);
  key = makeKeyDir();
  stack = await startStack({
    users: USERS,
    fhirDirectives: fhirsubDirectives({ wsUrl: wsUrlFor(9), keyFile: key.keyFile, lifetime: 600 }),
  });
  clients = clientsFor(stack.fhirUrl);
});

after(async () => {
  await stopAndCheckLog(stack);
  key?.cleanup();
});

// ---- helpers -----------------------------------------------------------------------

/** --driver/--params of the stack's database. */
function dbArgs() {
  return stack.db === 'pgsql' ? ['--driver', 'pgsql', '--params', stack.pg.conninfo] : ['--driver', 'sqlite3', '--params', stack.httpd.dbFile];
}

/**
 * Runs the tool; resolves to {code, stdout, stderr}. The database arguments come first
 * unless db is given ([] for none); FHIRSUB_DB_* of the caller's environment never leak in.
 */
function admin(args, { db = dbArgs(), env = {}, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const baseEnv = { ...process.env };
  delete baseEnv.FHIRSUB_DB_DRIVER;
  delete baseEnv.FHIRSUB_DB_PARAMS;
  return capture(ADMIN_BIN, [...db, ...args], { env: { ...baseEnv, ...env }, timeoutMs });
}

/** Runs the tool and asserts exit 0 and an empty stderr; resolves to stdout. */
async function adminOk(args, opts) {
  const res = await admin(args, opts);
  assert.equal(res.code, 0, `fhirsub-admin ${args.join(' ')}: exit ${res.code}\n${res.stderr}${res.stdout}`);
  assert.equal(res.stderr, '', `fhirsub-admin ${args.join(' ')} wrote to stderr`);
  return res.stdout;
}

/** Runs the tool with --json and asserts exit 0; resolves to the parsed document. */
async function adminJson(args, opts) {
  const out = await adminOk([...args, '--json'], opts);
  try {
    return JSON.parse(out);
  } catch (err) {
    throw new Error(`fhirsub-admin ${args.join(' ')} --json printed no JSON: ${err.message}\n${out}`);
  }
}

/** Runs the tool and asserts the exit code and an error message on stderr (none on stdout). */
async function adminFails(args, code, message, opts) {
  const res = await admin(args, opts);
  assert.equal(res.code, code, `fhirsub-admin ${args.join(' ')}: expected exit ${code}, got ${res.code}\n${res.stderr}${res.stdout}`);
  assert.match(res.stderr, message);
  assert.match(res.stderr, /^fhirsub-admin: /);
  assert.equal(res.stdout, '', 'errors never go to stdout');
  return res.stderr;
}

/** Data lines of a text table (the header dropped) that mention id. */
function linesWith(out, id) {
  return out.split('\n').filter((line) => line.includes(id));
}

/** A binding token for user (ids: the subscriptions, none = all active ones); its grant id. */
async function grantFor(user, ...ids) {
  const query = ids.map((id) => `id=${id}`).join('&');
  const res = await clients[user].get(`Subscription/$get-ws-binding-token${query ? `?${query}` : ''}`);
  assert.equal(res.status, 200, res.text);
  return decodeJwt(param(res.body, 'token').valueString).payload.jti;
}

async function grantRow(id) {
  const rows = await stack.query(`SELECT owner, revoked_ms, expires_ms FROM fhirsub_grant WHERE id = ${sqlString(id)}`);
  return rows.length ? { owner: rows[0][0], revoked: Number(rows[0][1]), expires: Number(rows[0][2]) } : null;
}

/** Event numbers stored for a subscription, ascending. */
async function eventNumbers(subId) {
  const rows = await stack.query(`SELECT event_number FROM fhirsub_event WHERE subscription_id = ${sqlString(subId)} ORDER BY event_number`);
  return rows.map((r) => Number(r[0]));
}

async function changeExists(changeId) {
  const rows = await stack.query(`SELECT COUNT(*) FROM fhirsub_change WHERE id = ${sqlString(changeId)}`);
  return Number(rows[0][0]) === 1;
}

function wwwDataUid() {
  return Number(spawnSync('id', ['-u', 'www-data'], { encoding: 'utf8' }).stdout.trim());
}

// ---- schema ------------------------------------------------------------------------

describe('migrate and version on an empty database', () => {
  let params;
  let query;
  let dir;

  before(async () => {
    if (stack.db === 'pgsql') {
      await psql(stack.pg.conninfo, 'CREATE DATABASE admin_empty');
      params = conninfoFor(stack.pg.port, 'admin_empty');
      query = (sql) => psqlRows(params, sql);
    } else {
      // a directory of www-data, as httpd's database directory is: run as root, the tool
      // must create the file as www-data
      dir = makeTempDir('fhirsub-admin-');
      if (isRoot()) fs.chownSync(dir, wwwDataUid(), wwwDataUid());
      params = path.join(dir, 'fhirsub.db');
      query = (sql) => sqliteRows(params, sql);
    }
  });

  const db = () => ['--driver', stack.db, '--params', params];

  test('commands other than migrate refuse a database without the schema', async () => {
    if (stack.db === 'sqlite3') {
      await adminFails(['subscriptions'], 1, /does not exist.*fhirsub-admin migrate/, { db: db() });
      assert.equal(fs.existsSync(params), false, 'no empty file left behind');
    } else {
      await adminFails(['subscriptions'], 1, /no mod_fhirsub schema yet.*fhirsub-admin migrate/, { db: db() });
      assert.match(await adminOk(['version'], { db: db() }), /^schema version 0 \(none: create it with `fhirsub-admin migrate`\)\n$/);
    }
  });

  test('migrate creates the schema, then finds it current', async () => {
    assert.equal(await adminOk(['migrate'], { db: db() }), 'schema version 3 (was 0)\n');
    const tables = (await query(
      stack.db === 'pgsql'
        ? "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'fhirsub%' ORDER BY 1"
        : "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
    )).map((r) => r[0]).sort();
    assert.deepEqual(tables, ['fhirsub_change', 'fhirsub_event', 'fhirsub_grant', 'fhirsub_grant_subscription', 'fhirsub_schema', 'fhirsub_sub_counter', 'fhirsub_sub_key', 'fhirsub_subscription']);
    assert.equal(await adminOk(['migrate'], { db: db() }), 'schema version 3: already current\n');
    assert.deepEqual(await adminJson(['migrate'], { db: db() }), { schema_version: 3, previous_version: 3, changed: false });
    assert.equal(await adminOk(['version'], { db: db() }), 'schema version 3 (current)\n');
    assert.deepEqual(await adminJson(['version'], { db: db() }), { schema_version: 3, supported_version: 3, current: true });
    assert.deepEqual(await adminJson(['subscriptions'], { db: db() }), { subscriptions: [] });
    assert.equal(await adminOk(['grants'], { db: db() }), 'no live grants\n');
  });

  // what version 2 had: the counters in the subscription row, no counter table
  const V2_COUNTERS = ['events_since_start', 'last_delivery_ms', 'last_bound_ms'];
  async function downgradeToV2() {
    await query('DROP TABLE fhirsub_sub_counter');
    for (const c of V2_COUNTERS) await query(`ALTER TABLE fhirsub_subscription ADD COLUMN ${c} BIGINT NOT NULL DEFAULT 0`);
    await query('UPDATE fhirsub_schema SET version = 2');
  }

  test('migrate upgrades a schema version 1 database (the subscription filter index, then the counter table)', async () => {
    await downgradeToV2();
    // what version 1 had: no key table, no keyed column, the (topic, status) index
    for (const ddl of [
      'DROP INDEX fhirsub_subscription_candidate',
      'DROP TABLE fhirsub_sub_key',
      'ALTER TABLE fhirsub_subscription DROP COLUMN keyed',
      'CREATE INDEX fhirsub_subscription_topic ON fhirsub_subscription (topic, status)',
      'UPDATE fhirsub_schema SET version = 1',
    ]) await query(ddl);
    assert.match(await adminOk(['version'], { db: db() }), /^schema version 1 \(older: upgrade it with `fhirsub-admin migrate`\)\n$/);
    assert.deepEqual(await adminJson(['migrate'], { db: db() }), { schema_version: 3, previous_version: 1, changed: true });
    assert.deepEqual((await query('SELECT COUNT(*) FROM fhirsub_sub_key')).map((r) => Number(r[0])), [0]);
    assert.deepEqual((await query('SELECT COUNT(*) FROM fhirsub_subscription WHERE keyed = 0')).map((r) => Number(r[0])), [0]);
    assert.deepEqual((await query('SELECT COUNT(*) FROM fhirsub_sub_counter')).map((r) => Number(r[0])), [0]);
    assert.equal(await adminOk(['migrate'], { db: db() }), 'schema version 3: already current\n');
  });

  test('migrate upgrades a schema version 2 database to 3: the counters move to their own rows, values kept', async () => {
    await downgradeToV2();
    // a subscription of version 2, its counters in its row: 41 events, delivered and bound an hour ago
    const hourAgo = Date.now() - HOUR_MS;
    await query('INSERT INTO fhirsub_subscription (id, owner, status, channel_type, shape, topic, criteria, filters,'
      + ' content, content_type, heartbeat_period, timeout, max_count, end_ms, base_url, error, version_id, created_ms,'
      + ' updated_ms, resource, keyed, events_since_start, last_delivery_ms, last_bound_ms) VALUES'
      + ` ('v2-sub', 'alice', 'active', 'websocket', 2, 'http://example.org/t', 'http://example.org/t', '[]',`
      + ` 'id-only', 'application/fhir+json', 60, 0, 0, 0, 'http://x', '', 1, ${hourAgo - 5000}, ${hourAgo - 5000},`
      + ` '{"resourceType":"Subscription","id":"v2-sub"}', 0, 41, ${hourAgo}, ${hourAgo + 1000})`);
    assert.match(await adminOk(['version'], { db: db() }), /^schema version 2 \(older: upgrade it with `fhirsub-admin migrate`\)\n$/);
    assert.deepEqual(await adminJson(['migrate'], { db: db() }), { schema_version: 3, previous_version: 2, changed: true });
    assert.deepEqual(await query('SELECT subscription_id, events_since_start, last_delivery_ms, last_bound_ms FROM fhirsub_sub_counter'),
      [['v2-sub', '41', String(hourAgo), String(hourAgo + 1000)]]);
    // the old columns are gone: nothing reads or bumps a stale copy
    for (const c of V2_COUNTERS) {
      await assert.rejects(query(`SELECT ${c} FROM fhirsub_subscription`), `${c} dropped from fhirsub_subscription`);
    }
    // and the tool reads them from their new place
    const [s] = (await adminJson(['backlog'], { db: db() })).subscriptions;
    assert.equal(s.id, 'v2-sub');
    assert.equal(s.events_since_start, 41);
    assert.equal(Date.parse(s.last_delivery), hourAgo);
    assert.equal(Date.parse(s.last_bound), hourAgo + 1000);
    assert.equal(await adminOk(['migrate'], { db: db() }), 'schema version 3: already current\n');
    await query("DELETE FROM fhirsub_sub_counter WHERE subscription_id = 'v2-sub'");
    await query("DELETE FROM fhirsub_subscription WHERE id = 'v2-sub'");
  });

  test('as root, the SQLite files belong to the directory owner, not root', { skip: !isRoot() && 'not root' }, async (t) => {
    if (stack.db !== 'sqlite3') return t.skip('SQLite only');
    for (const name of fs.readdirSync(dir)) {
      assert.equal(fs.statSync(path.join(dir, name)).uid, wwwDataUid(), `${name} belongs to www-data`);
    }
  });

  test('a schema newer than the tool is refused with a clear message', async () => {
    await query('UPDATE fhirsub_schema SET version = 99 WHERE id = 1');
    try {
      await adminFails(['subscriptions'], 1, /schema version 99, newer than this fhirsub-admin's 3/, { db: db() });
      await adminFails(['migrate'], 1, /schema version 99, newer than this software's 3/, { db: db() });
      assert.equal(await adminOk(['version'], { db: db() }), 'schema version 99 (newer than this fhirsub-admin: upgrade it)\n');
    } finally {
      await query('UPDATE fhirsub_schema SET version = 3 WHERE id = 1');
    }
  });
});

// ---- subscriptions -----------------------------------------------------------------

describe('subscriptions', () => {
  const subs = {};

  before(async () => {
    subs.aliceBackport = await createSub(clients.alice, backportBody());
    subs.aliceClassic = await createSub(clients.alice, classicBody());
    subs.bobBackport = await createSub(clients.bob, backportBody());
    subs.bobOff = await createSub(clients.bob, classicBody({ status: 'off' }));
  });

  test('lists every user\'s subscriptions as an aligned table', async () => {
    const out = await adminOk(['subscriptions']);
    const [header] = out.split('\n');
    assert.match(header, /^ID +OWNER +STATUS +SHAPE +TOPIC\/CRITERIA +EVENTS +LAST DELIVERY +CREATED$/);
    const expect = {
      aliceBackport: ['alice', 'active', 'backport', backportBody().criteria],
      aliceClassic: ['alice', 'active', 'classic', classicBody().criteria],
      bobBackport: ['bob', 'active', 'backport', backportBody().criteria],
      bobOff: ['bob', 'off', 'classic', classicBody().criteria],
    };
    for (const [name, [owner, status, shape, what]] of Object.entries(expect)) {
      const lines = linesWith(out, subs[name].id);
      assert.equal(lines.length, 1, `${name} listed once`);
      const cols = lines[0].split(/ {2,}/);
      assert.deepEqual(cols.slice(0, 7), [subs[name].id, owner, status, shape, what, '0', '-'], lines[0]);
      assert.match(cols[7], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // columns start at the header's offsets
      assert.equal(lines[0].indexOf(owner), header.indexOf('OWNER'));
    }
  });

  test('--user and --status filter', async () => {
    const alice = await adminJson(['subscriptions', '--user', 'alice']);
    assert.deepEqual(alice.subscriptions.map((s) => s.id), [subs.aliceBackport.id, subs.aliceClassic.id]);
    const bobOff = await adminJson(['subscriptions', '-u', 'bob', '--status', 'off']);
    assert.deepEqual(bobOff.subscriptions.map((s) => s.id), [subs.bobOff.id]);
    const text = await adminOk(['subscriptions', '--user', 'nobody']);
    assert.equal(text, 'no subscriptions\n');
  });

  test('--json carries every column', async () => {
    const { subscriptions } = await adminJson(['subscriptions', '--user', 'alice']);
    const [bp, cl] = subscriptions;
    assert.equal(bp.owner, 'alice');
    assert.equal(bp.status, 'active');
    assert.equal(bp.shape, 'backport');
    assert.equal(bp.channel_type, 'websocket');
    assert.equal(bp.topic, backportBody().criteria);
    assert.equal(bp.events_since_start, 0);
    assert.equal(bp.last_delivery, null);
    assert.equal(bp.end, null);
    assert.equal(bp.created, subs.aliceBackport.meta.lastUpdated);
    assert.equal(cl.shape, 'classic');
    assert.equal(cl.topic, null);
    assert.equal(cl.criteria, classicBody().criteria);
  });
});

// ---- grants ------------------------------------------------------------------------

describe('grants, revoke, revoke-user, prune-grants', () => {
  let aliceSubs;
  let aliceGrant;
  let bobSub;
  let erinSub;
  let daveSub;

  before(async () => {
    erinSub = (await createSub(clients.erin, backportBody())).id;
    daveSub = (await createSub(clients.dave, backportBody())).id;
    aliceSubs = [(await createSub(clients.alice, backportBody())).id, (await createSub(clients.alice, classicBody())).id];
    bobSub = (await createSub(clients.bob, backportBody())).id;
    aliceGrant = await grantFor('alice', ...aliceSubs);
  });

  test('lists live grants with their subscriptions', async () => {
    const { grants } = await adminJson(['grants', '--user', 'alice']);
    assert.equal(grants.length, 1);
    const [g] = grants;
    assert.equal(g.id, aliceGrant);
    assert.equal(g.owner, 'alice');
    assert.deepEqual(g.subscriptions, [...aliceSubs].sort());
    assert.equal(g.revoked, null);
    assert.equal(g.live, true);
    assert.ok(Date.parse(g.expires) > Date.parse(g.issued));
    const out = await adminOk(['grants']);
    assert.match(out.split('\n')[0], /^ID +OWNER +ISSUED +EXPIRES +REVOKED +SUBSCRIPTIONS$/);
    const [line] = linesWith(out, aliceGrant);
    assert.ok(line.endsWith([...aliceSubs].sort().join(',')), line);
  });

  test('revoke sets revoked_ms and the grant leaves the live list', async () => {
    const before = Date.now();
    assert.equal(await adminOk(['revoke', aliceGrant]), `revoked grant ${aliceGrant} of alice\n`);
    const row = await grantRow(aliceGrant);
    assert.ok(row.revoked >= before - 1000 && row.revoked <= Date.now() + 1000, `revoked_ms ${row.revoked}`);
    assert.equal(await adminOk(['grants', '--user', 'alice']), 'no live grants\n');
    const { grants } = await adminJson(['grants', '--user', 'alice', '--all']);
    assert.equal(grants.length, 1);
    assert.equal(grants[0].live, false);
    assert.equal(Date.parse(grants[0].revoked), row.revoked);
    // again: nothing changes, and it says so
    assert.match(await adminOk(['revoke', aliceGrant]), new RegExp(`^grant ${aliceGrant} was already revoked at \\S+Z\\n$`));
    assert.deepEqual(await adminJson(['revoke', aliceGrant]), { grant: aliceGrant, revoked: 0 });
    assert.equal((await grantRow(aliceGrant)).revoked, row.revoked);
    await adminFails(['revoke', 'no-such-grant'], 1, /no grant no-such-grant: see the ids with `fhirsub-admin grants --all`/);
  });

  test('revoke-user revokes every live grant of one user and prints the count', async () => {
    const g1 = await grantFor('bob', bobSub);
    const g2 = await grantFor('bob', bobSub);
    const erinGrant = await grantFor('erin', erinSub);
    assert.equal(await adminOk(['revoke-user', 'bob']), 'revoked 2 live grants of bob\n');
    for (const id of [g1, g2]) assert.ok((await grantRow(id)).revoked > 0, `${id} revoked`);
    assert.equal((await grantRow(erinGrant)).revoked, 0, 'other users keep theirs');
    assert.deepEqual(await adminJson(['revoke-user', 'bob']), { user: 'bob', revoked: 0 });
    assert.equal(await adminOk(['revoke-user', 'nobody']), 'revoked 0 live grants of nobody\n');
  });

  test('prune-grants deletes grants expired more than a day ago, with their links', async () => {
    const old = await grantFor('dave', daveSub);
    const recent = await grantFor('dave', daveSub);
    const now = Date.now();
    await stack.query(`UPDATE fhirsub_grant SET expires_ms = ${now - 2 * DAY_MS} WHERE id = ${sqlString(old)}`);
    await stack.query(`UPDATE fhirsub_grant SET expires_ms = ${now - HOUR_MS} WHERE id = ${sqlString(recent)}`);
    await stack.query(`INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id) VALUES (${sqlString(old)}, 'x')`);
    assert.match(await adminOk(['prune-grants']), /^deleted 1 grant expired before \S+Z\n$/);
    assert.equal(await grantRow(old), null);
    assert.deepEqual(await stack.query(`SELECT subscription_id FROM fhirsub_grant_subscription WHERE grant_id = ${sqlString(old)}`), []);
    assert.ok(await grantRow(recent), 'expired an hour ago: kept');
    assert.equal((await adminJson(['prune-grants'])).grants_deleted, 0);
  });
});

// ---- backlog and prune -------------------------------------------------------------

describe('backlog and prune', () => {
  const PATIENTS = 5;
  let a;
  let b;
  let changes; // change id by event number (both subscriptions share them)
  let base; // an aged creation time: two hours ago

  before(async () => {
    // classic criteria "Patient": every Patient written through the base makes one event
    // per subscription, sharing one change row
    const body = { resourceType: 'Subscription', status: 'requested', reason: 't', criteria: 'Patient', channel: { type: 'websocket' } };
    a = (await createSub(clients.carol, body)).id;
    b = (await createSub(clients.carol, body)).id;
    for (let i = 0; i < PATIENTS; i++) {
      const res = await clients.carol.post('Patient', { resourceType: 'Patient', name: [{ family: `Admin${i}` }] });
      assert.equal(res.status, 201, res.text);
    }
    // events are recorded after the answer went out
    await waitFor(async () => (await subRow(stack, a)).events_since_start === String(PATIENTS) && (await subRow(stack, b)).events_since_start === String(PATIENTS), {
      what: `${PATIENTS} events for each subscription`,
    });
    const rows = await stack.query(`SELECT event_number, change_id FROM fhirsub_event WHERE subscription_id = ${sqlString(a)} ORDER BY event_number`);
    changes = Object.fromEntries(rows.map(([n, c]) => [Number(n), c]));
    const rowsB = await stack.query(`SELECT event_number, change_id FROM fhirsub_event WHERE subscription_id = ${sqlString(b)} ORDER BY event_number`);
    assert.deepEqual(Object.fromEntries(rowsB.map(([n, c]) => [Number(n), c])), changes, 'one change per write, shared');
    base = Date.now() - 2 * HOUR_MS;
  });

  const age = (sub, numbers) =>
    stack.query(`UPDATE fhirsub_event SET created_ms = ${base} + event_number * 1000 WHERE subscription_id = ${sqlString(sub)} AND event_number IN (${numbers.join(', ')})`);

  test('backlog shows the stored events per subscription', async () => {
    const { subscriptions } = await adminJson(['backlog']);
    for (const id of [a, b]) {
      const s = subscriptions.find((x) => x.id === id);
      assert.ok(s, `${id} in the backlog`);
      assert.equal(s.owner, 'carol');
      assert.equal(s.status, 'active');
      assert.equal(s.events_since_start, PATIENTS);
      assert.equal(s.stored_events, PATIENTS);
      assert.equal(s.stored_after_last_delivery, PATIENTS);
      assert.equal(s.last_delivery, null);
      assert.ok(Date.now() - Date.parse(s.oldest_event) < 5 * 60 * 1000, s.oldest_event);
    }
    const out = await adminOk(['backlog']);
    assert.match(out.split('\n')[0], /^ID +OWNER +STATUS +EVENTS +LAST DELIVERY +STORED +AFTER DELIVERY +OLDEST STORED$/);
    const cols = linesWith(out, a)[0].split(/ {2,}/);
    assert.deepEqual(cols.slice(0, 7), [a, 'carol', 'active', '5', '-', '5', '5']);
  });

  test('prune keeps the newest N and the undelivered events of a bound subscription', async () => {
    await age(a, [1, 2, 3, 4]);
    await age(b, [1, 2, 3, 4]);
    // b is bound (refreshed now) and delivered up to event 2's creation
    await stack.query(`UPDATE fhirsub_sub_counter SET last_bound_ms = ${Date.now()}, last_delivery_ms = ${base + 2000} WHERE subscription_id = ${sqlString(b)}`);
    const result = await adminJson(['prune', '--older-than', '3600', '--keep', '1']);
    assert.equal(result.keep, 1);
    assert.ok(Math.abs(Date.parse(result.created_before) - (Date.now() - HOUR_MS)) < 60_000, result.created_before);
    assert.deepEqual(
      { deleted: result.events_deleted, kept: result.events_kept, changes: result.changes_deleted },
      { deleted: 6, kept: 2, changes: 2 },
    );
    assert.deepEqual(await eventNumbers(a), [5], 'a: 1-4 old, 5 young');
    assert.deepEqual(await eventNumbers(b), [3, 4, 5], 'b: 3 and 4 created after its last delivery while bound');
    for (const n of [1, 2]) assert.equal(await changeExists(changes[n]), false, `change ${n} unreferenced: deleted`);
    for (const n of [3, 4, 5]) assert.equal(await changeExists(changes[n]), true, `change ${n} still referenced`);
    const { subscriptions } = await adminJson(['backlog']);
    const sb = subscriptions.find((x) => x.id === b);
    assert.equal(sb.stored_events, 3);
    assert.equal(sb.stored_after_last_delivery, 3);
    assert.equal(Date.parse(sb.oldest_event), base + 3000);
    assert.equal(Date.parse(sb.last_delivery), base + 2000);
  });

  test('--keep N keeps the newest N even when old; unbound subscriptions lose their old events', async () => {
    await age(a, [5]);
    let out = await adminOk(['prune', '--older-than', '3600', '--keep', '1']);
    assert.match(out, /^deleted 0 events created before \S+Z \(kept 3 of them: newest 1 per subscription, or not yet delivered while bound\)\ndeleted 0 changes no event referenced any more\n$/);
    assert.deepEqual(await eventNumbers(a), [5]);
    out = await adminOk(['prune', '--older-than', '3600']);
    assert.match(out, /^deleted 1 events .*\(kept 2 of them: newest 0 per/);
    assert.deepEqual(await eventNumbers(a), []);
    assert.deepEqual(await eventNumbers(b), [3, 4, 5]);
    // b's binding is stale now: an hour and a half without a refresh
    await stack.query(`UPDATE fhirsub_sub_counter SET last_bound_ms = ${Date.now() - 1.5 * HOUR_MS} WHERE subscription_id = ${sqlString(b)}`);
    await age(b, [5]);
    const result = await adminJson(['prune', '--older-than', '3600', '--keep', '0']);
    assert.deepEqual(
      { keep: result.keep, deleted: result.events_deleted, kept: result.events_kept, changes: result.changes_deleted },
      { keep: 0, deleted: 3, kept: 0, changes: 3 },
    );
    assert.deepEqual(await eventNumbers(b), []);
    for (const n of [3, 4, 5]) assert.equal(await changeExists(changes[n]), false, `change ${n} deleted`);
    const { subscriptions } = await adminJson(['backlog']);
    for (const id of [a, b]) {
      const s = subscriptions.find((x) => x.id === id);
      assert.equal(s.events_since_start, PATIENTS, 'numbering is untouched');
      assert.equal(s.stored_events, 0);
      assert.equal(s.oldest_event, null);
    }
  });
});

// ---- command line, database selection, errors ----------------------------------------

describe('command line and errors', () => {
  test('usage errors exit 2 with a message and a pointer to --help', async () => {
    const cases = [
      [[], /no command given/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['subscriptions', '--frobnicate'], /invalid option: --frobnicate/],
      [['subscriptions', '--status', 'sleeping'], /--status wants requested, active, error or off, not "sleeping"/],
      [['grants', '--user'], /missing argument/],
      [['revoke'], /revoke: missing argument, usage: revoke GRANT_ID/],
      [['revoke', 'a', 'b'], /unexpected argument "b"/],
      [['revoke-user'], /missing argument, usage: revoke-user USER/],
      [['prune'], /prune needs --older-than SECONDS/],
      [['prune', '--older-than', 'week'], /--older-than wants a whole number from 60 to \d+, not "week"/],
      [['prune', '--older-than', '10'], /--older-than wants a whole number from 60/],
      [['prune', '--older-than', '3600', '--keep', '-1'], /--keep wants a whole number, not "-1"/],
      [['prune', '--older-than', '3600x'], /not "3600x"/],
    ];
    for (const [args, message] of cases) {
      const stderr = await adminFails(args, 2, message);
      assert.match(stderr, /Run `fhirsub-admin --help`/, args.join(' '));
    }
    await adminFails(['version'], 2, /no database given: use --driver sqlite3\|pgsql and --params .* or set FHIRSUB_DB_DRIVER and FHIRSUB_DB_PARAMS/, { db: [] });
  });

  test('--help documents the commands and the switch to the SQLite file owner', async () => {
    const out = await adminOk(['--help'], { db: [] });
    for (const cmd of ['migrate', 'version', 'subscriptions', 'grants', 'revoke GRANT_ID', 'revoke-user USER', 'backlog', 'prune --older-than SECONDS', 'prune-grants']) {
      assert.match(out, new RegExp(`\\n  ${cmd}`), cmd);
    }
    assert.match(out, /switches to the\s+owner of the database file/);
    assert.match(out, /exit status: 0 done, 1 runtime error/);
    assert.match(await adminOk(['prune', '--help'], { db: [] }), /--keep N/);
    assert.match(await adminOk(['--version'], { db: [] }), /^fhirsub-admin \S+ \(schema version 3\)\n$/);
  });

  test('FHIRSUB_DB_DRIVER and FHIRSUB_DB_PARAMS select the database', async () => {
    const [, driver, , params] = dbArgs();
    const doc = await adminJson(['version'], { db: [], env: { FHIRSUB_DB_DRIVER: driver, FHIRSUB_DB_PARAMS: params } });
    assert.equal(doc.schema_version, 3);
  });

  test('an unsupported driver exits 1 naming the supported ones', async () => {
    await adminFails(['version'], 1, /unsupported database driver "mysql": mod_fhirsub stores its data in sqlite3 or pgsql/, { db: ['--driver', 'mysql', '--params', 'x'] });
  });

  test('an unreachable PostgreSQL exits 1, without echoing the password', async () => {
    const port = await freePort();
    const stderr = await adminFails(['subscriptions'], 1, /cannot connect to PostgreSQL: .*refused.*; check --params/, {
      db: ['--driver', 'pgsql', '--params', `host=127.0.0.1 port=${port} dbname=x user=fhirsub password=s3cret connect_timeout=5`],
    });
    assert.doesNotMatch(stderr, /s3cret/);
    assert.equal(stderr.trim().split('\n').length, 1, 'one line');
  });

  test('a missing SQLite file exits 1 and is not created', async () => {
    const file = path.join(makeTempDir('fhirsub-admin-'), 'nope.db');
    await adminFails(['backlog'], 1, /the SQLite database .*nope\.db does not exist: check --params/, { db: ['--driver', 'sqlite3', '--params', file] });
    assert.equal(fs.existsSync(file), false);
    await adminFails(['migrate'], 1, /cannot create the SQLite database \/nonexistent-dir\/x\.db: the directory \/nonexistent-dir does not exist; create it/, { db: ['--driver', 'sqlite3', '--params', '/nonexistent-dir/x.db'] });
  });

  test('as root on SQLite, nothing in httpd\'s database directory belongs to root', { skip: !isRoot() && 'not root' }, async (t) => {
    if (stack.db !== 'sqlite3') return t.skip('SQLite only');
    await adminOk(['prune', '--older-than', '3600']);
    const dir = path.dirname(stack.httpd.dbFile);
    for (const name of fs.readdirSync(dir)) {
      assert.notEqual(fs.statSync(path.join(dir, name)).uid, 0, `${name} must not belong to root`);
    }
  });
});
