// Concurrent writers through httpd to the real FHIR backend, several subscriptions bound on
// their own websockets: every subscriber gets event numbers 1..N exactly once and in order, the
// database holds the counter N and rows 1..N without gap, and every event names one of the
// writes (none lost, none doubled). Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { backportBody, createSub, r5Body, TOPIC } from './lib/fhirsub.mjs';
import {
  IDENT_SYSTEM,
  assertDbEvents,
  assertNotification,
  eventView,
  fetchEvents,
  logicalId,
  notificationEvents,
  patientBody,
  startEventStack,
  subscribe,
  tokenFor,
  bindSubscriber,
  uniq,
  write,
} from './lib/events.mjs';

const WRITERS = 4;
const WRITES_PER_WRITER = 25;
const DELIVERY_BOUND_MS = 60_000; // every subscriber has all its events within this

let ctx;

before(async () => {
  ctx = await startEventStack();
});

after(async () => {
  await ctx?.stop();
});

/** Receives notifications for subId until n events came (bounded); resolves to them in order. */
async function collect(sock, subId, n, deadline) {
  const got = [];
  while (got.length < n) {
    const left = deadline - Date.now();
    assert.ok(left > 0, `Subscription/${subId}: ${got.length} of ${n} events within ${DELIVERY_BOUND_MS} ms`);
    got.push(await sock.next(subId, { timeoutMs: left, what: `event ${got.length + 1} of ${n}` }));
  }
  return got;
}

// On SQLite every write serialises on the database lock; the module waits for it without
// holding apr_dbd's process-wide mutex (mod_fhirsub_store.c), so writers of one httpd child
// do not stall each other.

test(`${WRITERS} writers x ${WRITES_PER_WRITER} writes in parallel: each subscriber gets 1..N exactly once, in order; the database agrees`, { timeout: 180_000 }, async (t) => {
  const run = uniq('conc');
  const p = uniq('concP'); // Observations of p match S2 and S3
  const q = uniq('concQ'); // Observations of q match S3 only
  const codeSystem = 'http://example.org/fhirsub-it/conc';
  // S1: R4 backport, id-only, every Patient with this run's identifier
  const s1 = await createSub(ctx.r4.alice, backportBody({ topic: TOPIC.patientChange, filters: [`Patient?identifier=${IDENT_SYSTEM}|${run}`], content: 'id-only', heartbeat: null, maxCount: null }));
  // S2: R4 backport, full-resource, Observations of p
  const s2 = await createSub(ctx.r4.alice, backportBody({ topic: TOPIC.observationChange, filters: [`Observation?subject=Patient/${p}`], content: 'full-resource', heartbeat: null, maxCount: null }));
  // S3: R5, id-only, every Observation with this run's code (overlaps S2: one write, two counters)
  const s3 = await createSub(ctx.r5.alice, r5Body({
    topic: TOPIC.observationChange,
    filterBy: [{ resourceType: 'Observation', filterParameter: 'code', value: `${codeSystem}|${run}` }],
    content: 'id-only',
    heartbeatPeriod: null,
    maxCount: null,
  }));
  const subs = [
    { name: 'S1', sub: s1, shape: 'backport', base: ctx.r4Url, content: 'id-only', topic: TOPIC.patientChange, sock: await subscribe(ctx, ctx.r4.alice, [s1]) },
    { name: 'S2', sub: s2, shape: 'backport', base: ctx.r4Url, content: 'full-resource', topic: TOPIC.observationChange, sock: await subscribe(ctx, ctx.r4.alice, [s2]) },
    { name: 'S3', sub: s3, shape: 'r5', base: ctx.r5Url, content: 'id-only', topic: TOPIC.observationChange, sock: await subscribe(ctx, ctx.r5.alice, [s3]) },
  ];
  // a second binding of S2, through Apache (mod_proxy_wstunnel): exactly once per binding
  const s2Again = { ...subs[1], name: 'S2 (second binding)', sock: await bindSubscriber(ctx.wsViaHttpd, await tokenFor(ctx.r4.alice, s2.id), [s2.id]) };
  subs.push(s2Again);
  for (const s of subs) assert.equal(notificationEvents(s.sock.handshakes[s.sub.id]).length, 0);

  // the writes: what each subscription must see, keyed by "Type/id"
  const expected = { [s1.id]: [], [s2.id]: [], [s3.id]: [] };
  const byFocus = new Map();
  const observation = (subject) => ({
    resourceType: 'Observation', status: 'final', code: { coding: [{ system: codeSystem, code: run }] }, subject: { reference: `Patient/${subject}` },
  });
  const writer = async (w) => {
    for (let i = 0; i < WRITES_PER_WRITER; i++) {
      try {
        await writeOne(w, i);
      } catch (err) {
        throw new Error(`writer ${w}, write ${i + 1} of ${WRITES_PER_WRITER}: ${err.message}`, { cause: err });
      }
    }
  };
  const writeOne = async (w, i) => {
    const kind = (w + i) % 3;
    let res;
    let info;
    if (kind === 0) {
      res = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(run, { name: [{ family: `W${w}`, given: [`${i}`] }] }), { status: 201 });
      info = { method: 'POST', url: 'Patient', status: 201, subs: [s1.id] };
    } else if (kind === 1) {
      res = await write(ctx.r4.alice, 'POST', 'Observation', { ...observation(p), valueInteger: w * 1000 + i }, { status: 201 });
      info = { method: 'POST', url: 'Observation', status: 201, subs: [s2.id, s3.id] };
    } else {
      // through the R5 base, an update that creates with a client-chosen id
      const id = `${run}-w${w}-${i}`;
      res = await write(ctx.r5.alice, 'PUT', `Observation/${id}`, { ...observation(q), id, valueInteger: w * 1000 + i }, { status: (s) => s === 200 || s === 201 });
      info = { method: 'PUT', url: `Observation/${id}`, status: res.status, subs: [s3.id] };
    }
    const focus = `${res.body.resourceType}/${res.body.id}`;
    assert.ok(!byFocus.has(focus), `each write touches its own resource: ${focus}`);
    byFocus.set(focus, { ...info, resource: res.body });
    for (const id of info.subs) expected[id].push(focus);
  };

  const started = Date.now();
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  const writeMs = Date.now() - started;
  const n = Object.fromEntries(Object.entries(expected).map(([id, list]) => [id, list.length]));
  assert.equal(n[s1.id] + n[s3.id], WRITERS * WRITES_PER_WRITER, 'every write matches S1 or S3');
  assert.ok(n[s1.id] > 0 && n[s2.id] > 0 && n[s3.id] > n[s2.id]);

  // delivery: 1..N exactly once, in order, per binding
  const deadline = started + DELIVERY_BOUND_MS;
  const received = await Promise.all(subs.map((s) => collect(s.sock, s.sub.id, n[s.sub.id], deadline)));
  for (const [k, s] of subs.entries()) {
    const msgs = received[k];
    const numbers = msgs.flatMap((m) => notificationEvents(m).map((e) => e.number));
    assert.deepEqual(numbers, Array.from({ length: n[s.sub.id] }, (_, i) => i + 1), `${s.name}: event numbers 1..${n[s.sub.id]} in order, each once`);
    // each notification is conformant and names one of the writes meant for it
    const focuses = [];
    msgs.forEach((m, i) => {
      const focus = logicalId(notificationEvents(m)[0].focus);
      const w = byFocus.get(focus);
      assert.ok(w && w.subs.includes(s.sub.id), `${s.name}: event ${i + 1} names a write meant for it: ${focus}`);
      assertNotification(m, {
        shape: s.shape, base: s.base, subId: s.sub.id, type: 'event-notification', content: s.content, since: i + 1, topic: s.topic,
        events: [{ number: i + 1, focus, method: w.method, url: w.url, status: String(w.status), resource: s.content === 'full-resource' ? w.resource : undefined }],
      });
      focuses.push(focus);
    });
    assert.deepEqual([...focuses].sort(), [...expected[s.sub.id]].sort(), `${s.name}: every matching write exactly once`);
  }
  const deliverMs = Date.now() - started;
  for (const s of subs) await s.sock.expectQuiet(1000);

  // the database: counter N, rows 1..N
  for (const s of [s1, s2, s3]) await assertDbEvents(ctx.stack, s.id, n[s.id]);
  // $events serves the same events as the live stream
  const all = await fetchEvents(ctx.r4.alice, s2.id);
  const live = received[1];
  assert.deepEqual(notificationEvents(all).map((e) => e.number), Array.from({ length: n[s2.id] }, (_, i) => i + 1));
  live.forEach((m, i) => assert.deepEqual(eventView(all, i + 1), eventView(m, i + 1), `S2 event ${i + 1}: websocket = $events`));
  for (const s of subs) await s.sock.close();
  t.diagnostic(`${WRITERS * WRITES_PER_WRITER} writes in ${writeMs} ms; all delivered after ${deliverMs} ms (N = ${n[s1.id]}, ${n[s2.id]}, ${n[s3.id]})`);
});
