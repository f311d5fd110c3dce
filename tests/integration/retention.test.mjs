// Event retention in fhirsub-notifier (docs/NOTIFIER.md "Retention"): EventRetention (age),
// EventRetentionCount (newest N), what is never pruned (events not yet sent to a client bound
// here; after the last delivery of a subscription bound elsewhere within PruneBoundGrace) and
// the change rows no event references any more. Events are recorded directly in the database
// and aged with UPDATEs of created_ms. Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  backportBody,
  clientsFor,
  createSub,
  fhirsubDirectives,
  makeKeyDir,
  param,
  sqlString,
  stopAndCheckLog,
  USERS,
} from './lib/fhirsub.mjs';
import { notifierProblems, recordEvents, sendWake, startNotifier, WS_PATH } from './lib/notifier.mjs';
import { freePorts } from './lib/ports.mjs';
import { startStack } from './lib/stack.mjs';
import { sleep, waitFor } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const RETENTION_S = 60;
const RETENTION_COUNT = 5;
const PRUNE_INTERVAL_S = 0.3;
const HOUR_MS = 3_600_000;

let stack;
let key;
let nt;
let wakePort;
let alice;

before(async () => {
  key = makeKeyDir();
  const [ntPort, wake] = await freePorts(2);
  wakePort = wake;
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      {
        path: fhirPath,
        directives: fhirsubDirectives({ wsUrl: `ws://127.0.0.1:${ntPort}${WS_PATH}`, keyFile: key.keyFile, lifetime: 300 }),
        proxyTo: backend.url,
      },
    ],
  });
  alice = clientsFor(stack.fhirUrl).alice;
  nt = await startNotifier({
    stack,
    keyFile: key.keyFile,
    port: ntPort,
    config: {
      EventRetention: RETENTION_S,
      EventRetentionCount: RETENTION_COUNT,
      PruneInterval: PRUNE_INTERVAL_S,
      // nothing is delivered unless a test wakes the notifier (no polling in between)
      PollInterval: 3600,
      WakeListen: stack.db === 'sqlite3' ? `127.0.0.1:${wakePort}` : undefined,
    },
  });
});

after(async () => {
  const log = nt?.log() ?? '';
  await nt?.stop();
  await stopAndCheckLog(stack);
  key?.cleanup();
  assert.deepEqual(notifierProblems(log), [], 'notifier warnings or errors');
});

// ---- helpers -------------------------------------------------------------------------------

const newSub = () => createSub(alice, backportBody({ heartbeat: null, content: 'id-only', maxCount: 20 }));

/** The event numbers of subId still in the database, ascending. */
async function storedNumbers(subId) {
  const rows = await stack.query(`SELECT event_number FROM fhirsub_event WHERE subscription_id = ${sqlString(subId)} ORDER BY event_number`);
  return rows.map(([n]) => Number(n));
}

/** Events of subId (numbers up to upTo) recorded hoursAgo hours ago. */
async function age(subId, hoursAgo, upTo = Number.MAX_SAFE_INTEGER) {
  await stack.query(
    `UPDATE fhirsub_event SET created_ms = ${Date.now() - hoursAgo * HOUR_MS} WHERE subscription_id = ${sqlString(subId)} AND event_number <= ${upTo}`,
  );
}

async function changeIds(subId) {
  const rows = await stack.query(`SELECT change_id FROM fhirsub_event WHERE subscription_id = ${sqlString(subId)} ORDER BY event_number`);
  return rows.map(([id]) => id);
}

async function changesLeft(ids) {
  if (!ids.length) return 0;
  const rows = await stack.query(`SELECT COUNT(*) FROM fhirsub_change WHERE id IN (${ids.map(sqlString).join(', ')})`);
  return Number(rows[0][0]);
}

async function untilStored(subId, expected, what) {
  await waitFor(async () => JSON.stringify(await storedNumbers(subId)) === JSON.stringify(expected), {
    what: `${what}: events ${JSON.stringify(expected)} (have ${JSON.stringify(await storedNumbers(subId))})`,
    timeoutMs: 10_000,
  });
}

/** Long enough for several complete retention passes. */
const severalPasses = () => sleep(PRUNE_INTERVAL_S * 1000 * 5);

/** The event numbers $events serves for subId. */
async function eventsOp(subId) {
  const res = await alice.get(`Subscription/${subId}/$events`);
  assert.equal(res.status, 200, res.text);
  return res.body.entry[0].resource.parameter
    .filter((p) => p.name === 'notification-event')
    .map((p) => Number(p.part.find((q) => q.name === 'event-number').valueString));
}

function eventNumbers(bundle) {
  return bundle.entry[0].resource.parameter
    .filter((p) => p.name === 'notification-event')
    .map((p) => Number(p.part.find((q) => q.name === 'event-number').valueString));
}

async function tokenFor(subId) {
  const res = await alice.get(`Subscription/$get-ws-binding-token?id=${subId}`);
  assert.equal(res.status, 200, res.text);
  return param(res.body, 'token').valueString;
}

async function wakeFor(subId) {
  if (stack.db === 'sqlite3') await sendWake(wakePort, subId);
  else await stack.query(`SELECT pg_notify('fhirsub_event', ${sqlString(subId)})`);
}

/** Inserts one change row (no event) created createdMs; resolves to its id. */
function changeInsert(id, createdMs = Date.now()) {
  return `INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id, interaction, request_method, request_url, response_status, body) VALUES (${sqlString(id)}, ${createdMs}, 'Encounter', 'shared', '1', 'update', 'PUT', 'Encounter/shared', '200', '')`;
}

async function insertChange(createdMs = Date.now()) {
  const id = crypto.randomUUID();
  await stack.query(changeInsert(id, createdMs));
  return id;
}

/** An event of subId on an existing change, numbered as the recorder numbers. */
function eventOnChange(subId, changeId, createdMs) {
  return [
    `UPDATE fhirsub_sub_counter SET events_since_start = events_since_start + 1 WHERE subscription_id = ${sqlString(subId)}`,
    `INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms) SELECT subscription_id, events_since_start, ${sqlString(changeId)}, ${createdMs} FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(subId)}`,
  ];
}

// ---- the limits ----------------------------------------------------------------------------

describe('retention limits', () => {
  test('events older than EventRetention are pruned with their change rows; $events serves the kept ones', async () => {
    const sub = await newSub();
    await recordEvents(stack, sub.id, 4, { size: 10, notify: false });
    const gone = (await changeIds(sub.id)).slice(0, 2);
    await age(sub.id, 2, 2);
    await untilStored(sub.id, [3, 4], 'the two old events pruned');
    assert.deepEqual(await eventsOp(sub.id), [3, 4]);
    await waitFor(async () => (await changesLeft(gone)) === 0, { what: 'their change rows deleted' });
    // within retention every event stays, bound or not
    await severalPasses();
    assert.deepEqual(await storedNumbers(sub.id), [3, 4]);
    const [[since]] = await stack.query(`SELECT events_since_start FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(sub.id)}`);
    assert.equal(since, '4', 'the counter never moves back');
  });

  test('EventRetentionCount keeps the newest N of each subscription', async () => {
    const sub = await newSub();
    const few = await newSub();
    await recordEvents(stack, sub.id, RETENTION_COUNT + 3, { size: 10, notify: false });
    await recordEvents(stack, few.id, RETENTION_COUNT, { size: 10, notify: false });
    await untilStored(sub.id, [4, 5, 6, 7, 8], `the newest ${RETENTION_COUNT} kept`);
    assert.deepEqual(await eventsOp(sub.id), [4, 5, 6, 7, 8]);
    await severalPasses();
    assert.deepEqual(await storedNumbers(few.id), [1, 2, 3, 4, 5], 'not more than N: all stay');
  });

  test('change rows no event references are deleted; one still referenced stays', async () => {
    const orphan = await insertChange(Date.now() - 3 * HOUR_MS);
    const fresh = await insertChange();
    const oldSub = await newSub();
    const newSubscription = await newSub();
    // the shared change and its events in one transaction: alone, a pass would take it for
    // an orphan
    const shared = crypto.randomUUID();
    await stack.query(
      ['BEGIN', changeInsert(shared), ...eventOnChange(oldSub.id, shared, Date.now() - 2 * HOUR_MS), ...eventOnChange(newSubscription.id, shared, Date.now()), 'COMMIT'].join(';\n'),
    );
    await waitFor(async () => (await changesLeft([orphan, fresh])) === 0, { what: 'the unreferenced change rows deleted' });
    await untilStored(oldSub.id, [], 'the old event pruned');
    await severalPasses();
    assert.equal(await changesLeft([shared]), 1, 'the change of the kept event stays');
    assert.deepEqual(await storedNumbers(newSubscription.id), [1]);
  });
});

// ---- what is never pruned -------------------------------------------------------------------

describe('what pruning never removes', () => {
  test('events not yet sent to a client bound here survive pruning and are then delivered', async () => {
    const sub = await newSub();
    const control = await newSub();
    const ws = await connectWs(nt.url);
    ws.send(`bind-with-token ${await tokenFor(sub.id)}`);
    const handshake = await ws.next();
    assert.equal(handshake.entry[0].resource.parameter.find((p) => p.name === 'events-since-subscription-start').valueString, '0');
    // the notifier is told nothing: the binding's cursor stays at 0 while its events age
    // past both limits (older than EventRetention, more than EventRetentionCount). The
    // scan every bind starts is over long before they are recorded.
    await sleep(500);
    await recordEvents(stack, sub.id, RETENTION_COUNT + 3, { size: 10, notify: false });
    await recordEvents(stack, control.id, 2, { size: 10, notify: false });
    await age(sub.id, 2);
    await age(control.id, 2);
    // as if another client of it had been sent more recent ones: only the cursor here
    // keeps them (not the rule for subscriptions bound elsewhere)
    await stack.query(`UPDATE fhirsub_sub_counter SET last_delivery_ms = ${Date.now() - HOUR_MS} WHERE subscription_id = ${sqlString(sub.id)}`);
    await untilStored(control.id, [], 'the unbound subscription\'s old events pruned');
    await severalPasses();
    assert.deepEqual(await storedNumbers(sub.id), [1, 2, 3, 4, 5, 6, 7, 8], 'nothing above the cursor pruned');
    await wakeFor(sub.id);
    const got = [];
    while (got.length < 8) got.push(...eventNumbers(await ws.next({ timeoutMs: 10_000 })));
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
    // sent: now they may go
    await untilStored(sub.id, [], 'the delivered old events pruned');
    await ws.close();
  });

  test('a subscription bound elsewhere within PruneBoundGrace keeps the events after its last delivery', async () => {
    const sub = await newSub();
    await recordEvents(stack, sub.id, 4, { size: 10, notify: false });
    // as another notifier leaves it: bound just now, last delivery two hours ago; then
    // events 1-2 from before that delivery, 3-4 from after it, all older than retention
    const now = Date.now();
    await stack.query(
      `UPDATE fhirsub_sub_counter SET last_bound_ms = ${now}, last_delivery_ms = ${now - 2 * HOUR_MS} WHERE subscription_id = ${sqlString(sub.id)}`,
    );
    await age(sub.id, 1);
    await age(sub.id, 3, 2);
    await untilStored(sub.id, [3, 4], 'the events delivered before pruned');
    await severalPasses();
    assert.deepEqual(await storedNumbers(sub.id), [3, 4], 'undelivered events stay while bound elsewhere');
    // bound longer ago than PruneBoundGrace (3600 s): no one is waiting for them
    await stack.query(`UPDATE fhirsub_sub_counter SET last_bound_ms = ${now - 2 * HOUR_MS} WHERE subscription_id = ${sqlString(sub.id)}`);
    await untilStored(sub.id, [], 'the rest pruned once the grace is over');
  });
});
