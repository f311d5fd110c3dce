// The event pipeline end to end: httpd + mod_fhirsub in front of the real FHIR backend (an R4
// base and an R5 base, both proxied to it), fhirsub-notifier on the same database, and helpers
// to write through httpd, bind websockets, read `$events` and check notification Bundles field
// by field (R4 backport, R5, classic shapes) as the Subscriptions Backport IG requires.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { assertNoCrash, unexpectedLogLines } from './httpd.mjs';
import { URL as FHIRSUB_URL, clientsFor, fhirsubDirectives, makeKeyDir, param, sqlString, USERS } from './fhirsub.mjs';
import { notifierProblems, startNotifier, WS_PATH } from './notifier.mjs';
import { freePorts } from './ports.mjs';
import { startStack } from './stack.mjs';
import { sleep, waitFor } from './util.mjs';
import { connectWs } from './ws.mjs';

export const R5_PATH = '/fhir/R5';
export const IDENT_SYSTEM = 'http://example.org/fhirsub-it/ident';

// Both FHIR bases proxy to the same backend URL: mod_proxy then shares one worker and warns
// that the second `retry=0` is ignored. That is the test configuration, not the module.
export const HTTPD_LOG_ALLOW = ['AH01146'];

/** A fresh unique token for ids, identifiers and codes (letters, digits and '-'). */
export function uniq(prefix = 'it') {
  return `${prefix}-${crypto.randomUUID()}`;
}

/**
 * Starts [PostgreSQL] + backend + httpd (R4 base /fhir/R4 and R5 base /fhir/R5, both proxied to
 * the backend, capture on, wake-ups to the notifier on SQLite; the websocket path proxied to
 * the notifier as Medplum's client needs) + fhirsub-notifier.
 * notifierConfig: more notifier keys; locationDirectives: more directives for both bases.
 * Resolves to
 *   {stack, nt, key, r4, r5 (clients per user), r4Url, r5Url, wsViaHttpd, stop()}.
 * stop() stops everything and asserts: no crash, no unexpected httpd [warn]/[error] line, no
 * notifier warning or error (besides `notifierAllow`).
 */
export async function startEventStack(opts = {}) {
  // The notifier's port is chosen before httpd (its URL goes into httpd's configuration) and
  // bound only after: another process may take it meanwhile. Start anew then (bounded).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEventStackOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/FS20002: cannot listen/.test(err.message)) throw err;
    }
  }
}

async function startEventStackOnce({ notifierConfig = {}, lifetime = 3600, httpdAllow = [], notifierAllow = [], locationDirectives = [] } = {}) {
  const key = makeKeyDir();
  const [ntPort, wakePort] = await freePorts(2);
  const wsUrl = `ws://127.0.0.1:${ntPort}${WS_PATH}`;
  const db = process.env.FHIRSUB_DB ?? 'sqlite3';
  const extra = [...(db === 'sqlite3' ? [`FhirSubNotifierWakeup 127.0.0.1:${wakePort}`] : []), ...locationDirectives];
  let stack;
  let nt;
  try {
    stack = await startStack({
      users: USERS,
      locations: ({ backend, fhirPath }) => [
        { path: fhirPath, directives: fhirsubDirectives({ wsUrl, keyFile: key.keyFile, lifetime, extra }), proxyTo: backend.url },
        {
          path: R5_PATH,
          directives: fhirsubDirectives({ wsUrl, keyFile: key.keyFile, lifetime, version: 'R5', extra }),
          proxyTo: backend.url,
        },
      ],
      serverDirectives: [`ProxyPass ${WS_PATH} ws://127.0.0.1:${ntPort}${WS_PATH}`],
    });
    nt = await startNotifier({
      stack,
      keyFile: key.keyFile,
      port: ntPort,
      config: {
        // Wake-ups (UDP on SQLite, NOTIFY on PostgreSQL) are what must deliver promptly: the
        // polling safety net is left far above every wait of these tests.
        PollInterval: 30,
        WakeListen: db === 'sqlite3' ? `127.0.0.1:${wakePort}` : undefined,
        ...notifierConfig,
      },
    });
  } catch (err) {
    await nt?.stop().catch(() => {});
    await stack?.stop().catch(() => {});
    key.cleanup();
    throw err;
  }
  const r5Url = `${stack.httpd.baseUrl}${R5_PATH}`;
  const ctx = {
    stack,
    nt,
    key,
    r4: clientsFor(stack.fhirUrl),
    r5: clientsFor(r5Url),
    r4Url: stack.fhirUrl,
    r5Url,
    wsViaHttpd: `${stack.httpd.baseUrl.replace('http://', 'ws://')}${WS_PATH}`,
  };
  ctx.stop = async () => {
    const ntLog = nt.log();
    const httpdLog = stack.httpd.errorLog();
    await nt.stop();
    await stack.stop();
    key.cleanup();
    assertNoCrash(httpdLog);
    assert.deepEqual(unexpectedLogLines(httpdLog, [...HTTPD_LOG_ALLOW, ...httpdAllow]), [], 'unexpected warnings or errors in the httpd error log');
    assert.deepEqual(notifierProblems(ntLog, notifierAllow), [], 'notifier warnings or errors');
  };
  return ctx;
}

// ---- writes through httpd -------------------------------------------------------------------

/**
 * One FHIR write through httpd; asserts the status (a number, or a predicate) and resolves to
 * the response. Errors show the answer.
 */
export async function write(client, method, path, body, { status, headers } = {}) {
  const res = await client.request(method, path, body, headers);
  if (typeof status === 'function') assert.ok(status(res.status), `${method} ${path}: unexpected ${res.status}: ${res.text.slice(0, 400)}`);
  else if (status !== undefined) assert.equal(res.status, status, `${method} ${path}: ${res.text.slice(0, 400)}`);
  return res;
}

export function patientBody(ident, extra = {}) {
  return { resourceType: 'Patient', identifier: [{ system: IDENT_SYSTEM, value: ident }], ...extra };
}

// ---- tokens, websockets -----------------------------------------------------------------------

/** $get-ws-binding-token for subscription ids at a base; resolves to the token. */
export async function tokenFor(client, ...ids) {
  const res = await client.get(`Subscription/$get-ws-binding-token?${ids.map((id) => `id=${id}`).join('&')}`);
  assert.equal(res.status, 200, res.text);
  return param(res.body, 'token').valueString;
}

function subIdOfReference(reference) {
  const m = /(?:^|\/)Subscription\/([^/]+)$/.exec(reference ?? '');
  return m ? m[1] : null;
}

/** The status resource (entry[0]) of a notification Bundle of any shape. */
export function statusResource(bundle) {
  return bundle?.entry?.[0]?.resource;
}

function backportParams(st, name) {
  return (st?.parameter ?? []).filter((p) => p.name === name);
}

/** handshake | heartbeat | event-notification | query-event ..., in any shape. */
export function notificationType(bundle) {
  const st = statusResource(bundle);
  if (!st) return undefined;
  if (st.resourceType === 'Parameters') return backportParams(st, 'type')[0]?.valueCode;
  return st.type;
}

/** The subscription id a notification is about. */
export function notificationSubId(bundle) {
  const st = statusResource(bundle);
  if (!st) return null;
  const ref = st.resourceType === 'Parameters' ? backportParams(st, 'subscription')[0]?.valueReference?.reference : st.subscription?.reference;
  return subIdOfReference(ref);
}

/** events-since-subscription-start as a number. */
export function eventsSinceStart(bundle) {
  const st = statusResource(bundle);
  const value = st.resourceType === 'Parameters' ? backportParams(st, 'events-since-subscription-start')[0]?.valueString : st.eventsSinceSubscriptionStart;
  return Number(value);
}

/** The events of a notification, normalised: [{number, timestamp, focus, additional}]. */
export function notificationEvents(bundle) {
  const st = statusResource(bundle);
  if (st.resourceType === 'Parameters') {
    return backportParams(st, 'notification-event').map((p) => {
      const part = (name) => (p.part ?? []).filter((q) => q.name === name);
      return {
        number: Number(part('event-number')[0]?.valueString),
        timestamp: part('timestamp')[0]?.valueInstant,
        focus: part('focus')[0]?.valueReference?.reference,
        additional: part('additional-context').map((q) => q.valueReference?.reference),
        raw: p,
      };
    });
  }
  return (st.notificationEvent ?? []).map((e) => ({
    number: Number(e.eventNumber),
    timestamp: e.timestamp,
    focus: e.focus?.reference,
    additional: (e.additionalContext ?? []).map((r) => r.reference),
    raw: e,
  }));
}

/** Event numbers of a notification. */
export function eventNumbers(bundle) {
  return notificationEvents(bundle).map((e) => e.number);
}

/** "Type/id" at the end of a reference or fullUrl (logical match: any base, any scheme). */
export function logicalId(reference) {
  const m = /([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference ?? '');
  return m ? `${m[1]}/${m[2]}` : null;
}

/**
 * A websocket bound with one token (text dialect), whose messages are routed per subscription.
 * Resolves once one handshake per id in subIds arrived:
 *   {ws, handshakes: {id: bundle}, next(id, {timeoutMs}), expectQuiet(ms), received(id), close()}
 * next() skips heartbeats; expectQuiet() fails on any message other than a heartbeat.
 */
export async function bindSubscriber(url, token, subIds, { timeoutMs = 15_000 } = {}) {
  const ws = await connectWs(url);
  const pending = new Map(); // subId -> [bundles not yet taken]
  const all = []; // every non-heartbeat message, in arrival order
  const take = (m) => {
    const id = notificationSubId(m);
    assert.ok(id, `a notification Bundle naming its subscription, got ${JSON.stringify(m).slice(0, 300)}`);
    if (notificationType(m) === 'heartbeat') return;
    all.push(m);
    if (!pending.has(id)) pending.set(id, []);
    pending.get(id).push(m);
  };
  const pull = async (deadline) => take(await ws.next({ timeoutMs: Math.max(1, deadline - Date.now()) }));
  const next = async (id, { timeoutMs: ms = timeoutMs, what = 'a notification' } = {}) => {
    const deadline = Date.now() + ms;
    while (!pending.get(id)?.length) {
      try {
        await pull(deadline);
      } catch (err) {
        throw new Error(`${what} for Subscription/${id}: ${err.message}`);
      }
    }
    return pending.get(id).shift();
  };
  ws.send(`bind-with-token ${token}`);
  const handshakes = {};
  for (const id of subIds) {
    const m = await next(id, { what: 'the handshake' });
    assert.equal(notificationType(m), 'handshake', `first message for ${id} is its handshake: ${JSON.stringify(m).slice(0, 300)}`);
    handshakes[id] = m;
  }
  return {
    ws,
    handshakes,
    next,
    /** Every non-heartbeat message received so far (handshakes included). */
    received: (id) => all.filter((m) => !id || notificationSubId(m) === id),
    /** Fails if any message but a heartbeat arrives within ms (or was left untaken). */
    async expectQuiet(ms = 1500) {
      const deadline = Date.now() + ms;
      for (;;) {
        const left = [...pending.values()].flat();
        assert.deepEqual(left.map((m) => `${notificationType(m)} #${eventNumbers(m).join(',')}`), [], 'no notification expected');
        if (Date.now() >= deadline) return;
        try {
          await pull(deadline);
        } catch (err) {
          if (/no websocket message within/.test(err.message)) continue;
          throw err;
        }
      }
    },
    close: () => ws.close(),
  };
}

/** Binds subscriptions of one base on a fresh connection (direct to the notifier). */
export async function subscribe(ctx, client, subs, { url } = {}) {
  const ids = subs.map((s) => s.id ?? s);
  const token = await tokenFor(client, ...ids);
  return bindSubscriber(url ?? ctx.nt.url, token, ids);
}

// ---- $events and the database ---------------------------------------------------------------

/** Subscription/[id]/$events (GET); asserts 200 and resolves to the Bundle. */
export async function fetchEvents(client, subId, { since, until, content } = {}) {
  const q = new URLSearchParams();
  if (since !== undefined) q.set('eventsSinceNumber', String(since));
  if (until !== undefined) q.set('eventsUntilNumber', String(until));
  if (content !== undefined) q.set('content', content);
  const qs = q.toString();
  const res = await client.get(`Subscription/${subId}/$events${qs ? `?${qs}` : ''}`);
  assert.equal(res.status, 200, `$events: ${res.text.slice(0, 400)}`);
  return res.body;
}

export async function dbEventsSinceStart(stack, subId) {
  const rows = await stack.query(`SELECT events_since_start FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(subId)}`);
  assert.equal(rows.length, 1, `row of Subscription/${subId}`);
  return Number(rows[0][0]);
}

export async function dbEventNumbers(stack, subId) {
  const rows = await stack.query(`SELECT event_number FROM fhirsub_event WHERE subscription_id = ${sqlString(subId)} ORDER BY event_number`);
  return rows.map((r) => Number(r[0]));
}

/** Asserts the database holds events 1..n for subId: the counter and the rows, no gap. */
export async function assertDbEvents(stack, subId, n) {
  assert.equal(await dbEventsSinceStart(stack, subId), n, `events_since_start of Subscription/${subId}`);
  assert.deepEqual(await dbEventNumbers(stack, subId), Array.from({ length: n }, (_, i) => i + 1), `fhirsub_event rows of Subscription/${subId}`);
}

/** Waits (bounded) until the database counts n events for subId. */
export async function waitForDbEvents(stack, subId, n, timeoutMs = 20_000) {
  await waitFor(async () => (await dbEventsSinceStart(stack, subId)) >= n, { what: `${n} events recorded for Subscription/${subId}`, timeoutMs, intervalMs: 100 });
}

// ---- conformance of a notification Bundle ---------------------------------------------------

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function assertInstant(value, what) {
  assert.match(String(value ?? ''), INSTANT, `${what} is a FHIR instant: ${value}`);
  assert.ok(Math.abs(Date.parse(value) - Date.now()) < 10 * 60_000, `${what} is about now: ${value}`);
}

/** Every key of expected is in actual with a deep-equal value (actual may have more). */
export function assertContains(actual, expected, what = 'resource') {
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual?.[k], v, `${what}.${k}`);
  }
}

/**
 * Asserts a notification Bundle field by field.
 *   shape: 'backport' | 'r5' | 'classic';  base: the subscription's FHIR base URL;  subId
 *   type: 'event-notification' | 'query-event' | 'handshake'
 *   content: 'empty' | 'id-only' | 'full-resource'
 *   since: the expected events-since-subscription-start (null: not checked)
 *   topic: expected topic canonical (backport, r5), when the shape carries it
 *   events: [{number, focus: 'Type/id', method, url, status, resource?: values the full
 *            resource must carry, deleted?: true}]
 */
export function assertNotification(bundle, { shape, base, subId, type, content, since, topic, events = [] }) {
  const label = `${shape} ${content} ${type} of Subscription/${subId}`;
  const text = JSON.stringify(bundle).slice(0, 1500);
  assert.equal(bundle?.resourceType, 'Bundle', `${label}: ${text}`);
  assert.equal(bundle.type, shape === 'r5' ? 'subscription-notification' : 'history', `${label}: Bundle.type`);
  assertInstant(bundle.timestamp, `${label}: Bundle.timestamp`);
  assert.equal(bundle.total, undefined, `${label}: a notification Bundle has no total`);
  assert.ok(Array.isArray(bundle.entry) && bundle.entry.length >= 1, `${label}: entries`);

  // the status entry
  const first = bundle.entry[0];
  const st = first.resource;
  assert.ok(first.fullUrl, `${label}: entry[0].fullUrl`);
  const subRef = shape === 'classic' ? `Subscription/${subId}` : `${base}/Subscription/${subId}`;
  let evs;
  if (shape === 'backport') {
    assert.equal(st.resourceType, 'Parameters', `${label}: entry[0] is the backport status Parameters`);
    assert.deepEqual(st.meta?.profile, [FHIRSUB_URL.backportStatusR4], `${label}: meta.profile`);
    const one = (name) => {
      const ps = backportParams(st, name);
      assert.equal(ps.length, 1, `${label}: exactly one '${name}' parameter`);
      return ps[0];
    };
    assert.equal(one('subscription').valueReference?.reference, subRef, `${label}: subscription`);
    assert.equal(one('status').valueCode, 'active', `${label}: status`);
    assert.equal(one('type').valueCode, type, `${label}: type`);
    const count = one('events-since-subscription-start');
    assert.equal(typeof count.valueString, 'string', `${label}: events-since-subscription-start is a valueString`);
    if (since !== null) assert.equal(count.valueString, String(since), `${label}: events-since-subscription-start`);
    if (topic && content !== 'empty') assert.equal(one('topic').valueCanonical, topic, `${label}: topic`);
    for (const p of backportParams(st, 'notification-event')) {
      const names = (p.part ?? []).map((q) => q.name);
      const eventNumber = p.part.find((q) => q.name === 'event-number');
      assert.equal(names.filter((n) => n === 'event-number').length, 1, `${label}: one event-number part`);
      assert.equal(typeof eventNumber.valueString, 'string', `${label}: event-number is a valueString`);
      assert.ok(names.filter((n) => n === 'focus').length <= 1, `${label}: at most one focus`);
      assert.deepEqual(
        names.filter((n) => !['event-number', 'timestamp', 'focus', 'additional-context'].includes(n)),
        [],
        `${label}: notification-event parts`,
      );
    }
    assert.equal(first.request?.method, 'GET', `${label}: entry[0].request.method`);
    assert.equal(first.request?.url, `${base}/Subscription/${subId}/$status`, `${label}: entry[0].request.url`);
    assert.equal(first.response?.status, '200', `${label}: entry[0].response.status`);
  } else {
    assert.equal(st.resourceType, 'SubscriptionStatus', `${label}: entry[0] is a SubscriptionStatus`);
    assert.equal(st.status, 'active', `${label}: status`);
    assert.equal(st.type, type, `${label}: type`);
    assert.equal(st.subscription?.reference, subRef, `${label}: subscription`);
    assert.equal(typeof st.eventsSinceSubscriptionStart, 'string', `${label}: eventsSinceSubscriptionStart is integer64 (a JSON string)`);
    if (since !== null) assert.equal(st.eventsSinceSubscriptionStart, String(since), `${label}: eventsSinceSubscriptionStart`);
    if (topic && shape === 'r5' && content !== 'empty') assert.equal(st.topic, topic, `${label}: topic`);
    for (const e of st.notificationEvent ?? []) assert.equal(typeof e.eventNumber, 'string', `${label}: eventNumber is integer64 (a JSON string)`);
    if (!events.length) assert.equal(st.notificationEvent, undefined, `${label}: no empty notificationEvent array`);
    if (shape === 'classic') {
      assert.equal(first.request?.method, 'GET', `${label}: entry[0].request.method`);
      assert.equal(first.response?.status, '200', `${label}: entry[0].response.status`);
    }
  }
  // every entry of a history Bundle carries request and response (bdl-3/bdl-4); in the R5
  // Bundle every entry but the status
  bundle.entry.forEach((e, i) => {
    if (shape === 'r5' && i === 0) return;
    assert.ok(e.request?.method && e.request?.url, `${label}: entry[${i}].request`);
    assert.ok(e.response?.status, `${label}: entry[${i}].response`);
  });

  // the events
  evs = notificationEvents(bundle);
  assert.deepEqual(evs.map((e) => e.number), events.map((e) => e.number), `${label}: event numbers`);
  if (type === 'event-notification') {
    // R5: the highest number in a notification equals eventsSinceSubscriptionStart
    assert.equal(Math.max(...evs.map((e) => e.number)), since, `${label}: highest event number = events since start`);
  }
  const focusRef = (focus) => (shape === 'classic' ? focus : `${base}/${focus}`);
  evs.forEach((ev, i) => {
    assertInstant(ev.timestamp, `${label}: event ${ev.number} timestamp`);
    if (content === 'empty') {
      assert.equal(ev.focus, undefined, `${label}: empty: no focus (event ${ev.number})`);
      assert.deepEqual(ev.additional, [], `${label}: empty: no additional-context`);
    } else {
      assert.equal(ev.focus, focusRef(events[i].focus), `${label}: focus of event ${ev.number}`);
    }
  });

  // the entries after the status
  const rest = bundle.entry.slice(1);
  if (content === 'empty') {
    assert.equal(rest.length, 0, `${label}: empty: no entry besides the status`);
    return;
  }
  assert.equal(rest.length, events.length, `${label}: one entry per event (${rest.map((e) => e.fullUrl).join(' ')})`);
  events.forEach((exp, i) => {
    const e = rest[i];
    const where = `${label}: entry of event ${exp.number}`;
    // the focus resolves to this entry: fullUrl and the focus reference name the same Type/id
    assert.equal(logicalId(e.fullUrl), exp.focus, `${where}: fullUrl ${e.fullUrl}`);
    assert.equal(logicalId(evs[i].focus), exp.focus, `${where}: focus resolves to the entry`);
    assert.equal(e.request.method, exp.method, `${where}: request.method`);
    assert.equal(e.request.url, exp.url, `${where}: request.url`);
    assert.match(e.response.status, new RegExp(`^${exp.status}( |$)`), `${where}: response.status`);
    if (content === 'id-only' || exp.deleted) {
      assert.equal(e.resource, undefined, `${where}: no resource (${content}${exp.deleted ? ', delete' : ''})`);
    } else {
      assert.ok(e.resource, `${where}: full-resource carries the resource`);
      assert.equal(`${e.resource.resourceType}/${e.resource.id}`, exp.focus, `${where}: resource type and id`);
      if (exp.resource) assertContains(e.resource, exp.resource, `${where}: resource`);
    }
  });
}

/**
 * The parts of one event that the websocket notification and `$events` must agree on: number,
 * timestamp, focus, and the entry (fullUrl, resource, request, response).
 */
export function eventView(bundle, number) {
  const evs = notificationEvents(bundle);
  const i = evs.findIndex((e) => e.number === number);
  assert.ok(i >= 0, `event ${number} in ${JSON.stringify(evs.map((e) => e.number))}`);
  const entry = bundle.entry[1 + i] ?? null;
  return { event: evs[i].raw, entry: entry && { fullUrl: entry.fullUrl, resource: entry.resource, request: entry.request, response: entry.response } };
}

/** Sleeps ms (re-exported for tests that need a bounded quiet period). */
export { sleep };
