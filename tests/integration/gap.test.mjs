// Recovering missed events: a client binds, receives events, disconnects while writes go on,
// recovers what it missed with Subscription/[id]/$events (eventsSinceNumber = last seen + 1),
// binds again — the handshake reports N, live delivery continues at N+1 — and ends up with
// every event exactly once across the three sources (live, $events, live again). Real writes
// through httpd to the FHIR backend; R4 backport and R5 shapes; FHIRSUB_DB=sqlite3 and =pgsql.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backportBody, createSub, r5Body, TOPIC } from './lib/fhirsub.mjs';
import {
  IDENT_SYSTEM,
  assertDbEvents,
  assertNotification,
  eventsSinceStart,
  fetchEvents,
  logicalId,
  notificationEvents,
  patientBody,
  sleep,
  startEventStack,
  subscribe,
  uniq,
  waitForDbEvents,
  write,
} from './lib/events.mjs';

let ctx;

before(async () => {
  ctx = await startEventStack();
});

after(async () => {
  await ctx?.stop();
});

const SHAPES = {
  backport: {
    base: () => ctx.r4Url,
    client: () => ctx.r4.alice,
    create: (ident) => createSub(ctx.r4.alice, backportBody({ topic: TOPIC.patientChange, filters: [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], content: 'full-resource', heartbeat: null, maxCount: null })),
  },
  r5: {
    base: () => ctx.r5Url,
    client: () => ctx.r5.alice,
    create: (ident) => createSub(ctx.r5.alice, r5Body({
      topic: TOPIC.patientChange,
      filterBy: [{ resourceType: 'Patient', filterParameter: 'identifier', value: `${IDENT_SYSTEM}|${ident}` }],
      content: 'full-resource',
      heartbeatPeriod: null,
      maxCount: null,
    })),
  },
};

/** Events of a Bundle as {number, focus: 'Type/id'}. */
function events(bundle) {
  return notificationEvents(bundle).map((e) => ({ number: e.number, focus: logicalId(e.focus) }));
}

/** Asserts the three sources hold 1..m exactly once, and the foci are the writes. */
function assertComplete(sources, written) {
  const all = Object.values(sources).flat();
  const numbers = all.map((e) => e.number).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: written.length }, (_, i) => i + 1), `1..${written.length} exactly once across ${JSON.stringify(Object.fromEntries(Object.entries(sources).map(([k, v]) => [k, v.map((e) => e.number)])))}`);
  assert.deepEqual(all.map((e) => e.focus).sort(), [...written].sort(), 'every write exactly once');
}

for (const [shape, S] of Object.entries(SHAPES)) {
  describe(`${shape} shape`, () => {
    test('disconnect, writes go on, $events from last seen + 1, bind again: handshake N, live from N+1, nothing missing or doubled', async () => {
      const ident = uniq('gap');
      const sub = await S.create(ident);
      const base = S.base();
      const client = S.client();
      const written = [];
      const writePatient = async (i) => {
        // through the subscription's own base (both proxy to the same backend)
        const res = await write(client, 'POST', 'Patient', patientBody(ident, { name: [{ family: 'Gap', given: [`n${i}`] }] }), { status: 201 });
        written.push(`Patient/${res.body.id}`);
        return res.body;
      };
      const expectLive = async (sock, number, resource) => {
        const m = await sock.next(sub.id);
        assertNotification(m, {
          shape, base, subId: sub.id, type: 'event-notification', content: 'full-resource', since: number, topic: TOPIC.patientChange,
          events: [{ number, focus: `Patient/${resource.id}`, method: 'POST', url: 'Patient', status: '201', resource }],
        });
        return events(m);
      };

      // 1. bound: events 1..3 live
      const first = await subscribe(ctx, client, [sub]);
      assert.equal(eventsSinceStart(first.handshakes[sub.id]), 0);
      const live1 = [];
      for (let i = 1; i <= 3; i++) live1.push(...(await expectLive(first, i, await writePatient(i))));
      const lastSeen = live1.at(-1).number;

      // 2. gone: the client leaves; four writes happen meanwhile
      const from = ctx.nt.logSize();
      await first.close();
      await ctx.nt.waitForLog(/FS20303: .* closed/, { from });
      for (let i = 4; i <= 7; i++) {
        await writePatient(i);
        await waitForDbEvents(ctx.stack, sub.id, i); // recorded in write order: numbers follow the writes
      }

      // 3. recovery with $events from last seen + 1
      const missed = await fetchEvents(client, sub.id, { since: lastSeen + 1 });
      assertNotification(missed, {
        shape, base, subId: sub.id, type: 'query-event', content: 'full-resource', since: 7, topic: TOPIC.patientChange,
        events: written.slice(3).map((focus, i) => ({ number: lastSeen + 1 + i, focus, method: 'POST', url: 'Patient', status: '201' })),
      });
      const recovered = events(missed);

      // 4. bound again: the handshake reports N = 7; nothing is replayed on the socket
      const second = await subscribe(ctx, client, [sub]);
      assertNotification(second.handshakes[sub.id], { shape, base, subId: sub.id, type: 'handshake', content: 'full-resource', since: 7 });
      await second.expectQuiet(1500);

      // 5. live delivery continues at N + 1
      const live2 = [];
      for (let i = 8; i <= 9; i++) live2.push(...(await expectLive(second, i, await writePatient(i))));
      await second.expectQuiet(500);

      assertComplete({ live1, recovered, live2 }, written);
      // the numbers follow the writes here (each was recorded before the next one)
      assert.deepEqual([...live1, ...recovered, ...live2].map((e) => e.focus), written);
      await assertDbEvents(ctx.stack, sub.id, 9);
      await second.close();
    });

    test('writes never stop: disconnect and reconnect twice under a steady writer; live + $events + live hold every event exactly once', { timeout: 120_000 }, async () => {
      const ident = uniq('gapw');
      const sub = await S.create(ident);
      const client = S.client();
      const written = [];
      const TOTAL = 40;
      let writerDone = false;
      let writerError = null;
      const writer = (async () => {
        try {
          for (let i = 0; i < TOTAL; i++) {
            const res = await write(client, 'POST', 'Patient', patientBody(ident, { name: [{ family: 'Steady', given: [`n${i}`] }] }), { status: 201 });
            written.push(`Patient/${res.body.id}`);
            await sleep(40);
          }
        } catch (err) {
          writerError = err;
        } finally {
          writerDone = true;
        }
      })();

      const sources = {};
      let last = 0; // the highest number this client has
      const takeLive = async (sock, name, until) => {
        // live events until `until()` says stop; each must be last + 1
        sources[name] = [];
        while (!until()) {
          const m = await sock.next(sub.id, { timeoutMs: 20_000 });
          for (const e of events(m)) {
            assert.equal(e.number, last + 1, `${name}: live event after ${last}`);
            last = e.number;
            sources[name].push(e);
          }
        }
      };
      const recover = async (name, n) => {
        // $events from last + 1 up to the handshake's N (what happened while away)
        sources[name] = [];
        if (n <= last) return;
        const b = await fetchEvents(client, sub.id, { since: last + 1, until: n });
        for (const e of events(b)) {
          assert.equal(e.number, last + 1, `${name}: $events after ${last}`);
          last = e.number;
          sources[name].push(e);
        }
        assert.equal(last, n, `${name}: $events served up to the handshake's N`);
      };

      let sock = await subscribe(ctx, client, [sub]);
      let n = eventsSinceStart(sock.handshakes[sub.id]);
      await recover('before first bind', n);
      for (const round of [1, 2]) {
        const target = last + 5;
        await takeLive(sock, `live ${round}`, () => last >= target);
        await sock.close();
        // away while at least 5 more events are recorded
        await waitForDbEvents(ctx.stack, sub.id, last + 5, 30_000);
        sock = await subscribe(ctx, client, [sub]);
        n = eventsSinceStart(sock.handshakes[sub.id]);
        assert.ok(n >= last + 5, `handshake ${round} reports the events recorded meanwhile (N = ${n}, last = ${last})`);
        await recover(`$events ${round}`, n);
      }
      await writer;
      assert.equal(writerError, null, writerError?.stack);
      assert.ok(writerDone);
      await waitForDbEvents(ctx.stack, sub.id, TOTAL, 30_000);
      await takeLive(sock, 'live 3', () => last >= TOTAL);
      await sock.expectQuiet(1000);
      await sock.close();

      assertComplete(sources, written);
      await assertDbEvents(ctx.stack, sub.id, TOTAL);
    });
  });
}
