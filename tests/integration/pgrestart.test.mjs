// PostgreSQL restarts under a running stack (a failover or a maintenance restart cuts every
// connection): httpd's children and the notifier must find their way back on their own, record
// the writes made after the restart and deliver them to the client still bound, without it
// reconnecting. PostgreSQL only (FHIRSUB_DB=pgsql); skipped on SQLite.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backportBody, createSub, TOPIC } from './lib/fhirsub.mjs';
import {
  IDENT_SYSTEM,
  eventNumbers,
  fetchEvents,
  notificationEvents,
  patientBody,
  startEventStack,
  subscribe,
  uniq,
  waitForDbEvents,
  write,
} from './lib/events.mjs';

const onPostgres = (process.env.FHIRSUB_DB ?? 'sqlite3') === 'pgsql';

if (!onPostgres) test('PostgreSQL restart', { skip: 'PostgreSQL only (FHIRSUB_DB=pgsql)' }, () => {});
else describe('PostgreSQL restart', () => {
  let ctx;
  before(async () => {
    ctx = await startEventStack({ httpdAllow: HTTPD_ALLOW, notifierAllow: NOTIFIER_ALLOW });
  });
  after(async () => {
    await ctx?.stop();
  });

  test('writes after the restart make events, delivered to the client still bound', async () => {
    const ident = uniq('pgr');
    const sub = await createSub(ctx.r4.alice, backportBody({
      topic: TOPIC.patientChange,
      filters: [`Patient?identifier=${IDENT_SYSTEM}|${ident}`],
      content: 'id-only',
      heartbeat: null,
      maxCount: null,
    }));
    const s = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
      assert.deepEqual(eventNumbers(await s.next(sub.id)), [1]);

      await ctx.stack.pg.restart();

      // The operations answer at once on connections opened before the restart.
      for (let i = 0; i < 6; i++) {
        const res = await ctx.r4.alice.get(`Subscription/${sub.id}/$status`);
        assert.equal(res.status, 200, `$status after the restart: ${res.text.slice(0, 300)}`);
      }

      // Every httpd child holds connections the restart cut: write more than there are, so
      // every child meets a dead connection at least once.
      const writes = 8;
      for (let i = 0; i < writes; i++) {
        await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
      }
      const n = writes + 1;
      await waitForDbEvents(ctx.stack, sub.id, n, 30_000);
      const live = [];
      while (live.length < writes) {
        live.push(...notificationEvents(await s.next(sub.id, { timeoutMs: 30_000 })).map((e) => e.number));
      }
      assert.deepEqual(live, Array.from({ length: writes }, (_, i) => i + 2), 'events 2..n live, in order, once');
      const stored = await fetchEvents(ctx.r4.alice, sub.id, { since: 1 });
      assert.deepEqual(notificationEvents(stored).map((e) => e.number), Array.from({ length: n }, (_, i) => i + 1));
      assert.match(ctx.stack.httpd.errorLog(), /FS10626: the PostgreSQL connection was lost/, 'httpd noticed the lost connections');
    } finally {
      s.close();
    }
  });
});

// What a restart legitimately leaves in the notifier's log: its LISTEN connection is cut, and
// its query connection fails once, then is opened again (every 2 s until it works). httpd's
// children notice cut connections before using them: nothing may show in its log.
const HTTPD_ALLOW = [];
const NOTIFIER_ALLOW = [
  /FS20107: LISTEN connection to PostgreSQL lost/,
  /FS00103: \w+ failed: (FATAL: +terminating connection due to administrator command|server closed the connection unexpectedly)/,
  /FS20103: database \(pgsql\) unavailable: query failed/,
];
