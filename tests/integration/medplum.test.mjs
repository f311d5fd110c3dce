// Medplum's own client (npm @medplum/core 5.x, MedplumClient.subscribeToCriteria) against
// httpd + mod_fhirsub + fhirsub-notifier, unmodified: it creates a classic-criteria
// Subscription under <base>/fhir/R4, asks $get-ws-binding-token, connects to
// <base>/ws/subscriptions-r4 (Apache proxies it to the notifier with mod_proxy_wstunnel),
// binds with its JSON frames, pings every 5 s, and routes notifications by
// entry[0].resource.type and the relative Subscription/<id> reference.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { clientsFor, fhirsubDirectives, makeKeyDir, sqlString, stopAndCheckLog, USERS } from './lib/fhirsub.mjs';
import { notifierProblems, recordEvent, sendWake, startNotifier, WS_PATH } from './lib/notifier.mjs';
import { freePorts } from './lib/ports.mjs';
import { startStack } from './lib/stack.mjs';
import { sleep, waitFor } from './lib/util.mjs';

// @medplum/core reads the global WebSocket when it is imported and when it runs (Node 20 has
// none without a flag): the `ws` package stands in, as Medplum documents for Node. It is set
// once the stack runs: lib/backend.mjs decides on --experimental-websocket by its absence.
async function importMedplum() {
  if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = WebSocket;
  return import('@medplum/core');
}

const EXPIRE_UNBOUND = 3;

let stack;
let key;
let nt;
let wakePort;
let medplum;
let clients;

/** Events of a SubscriptionEmitter, recorded as they come. */
function recorder(emitter) {
  const seen = [];
  for (const type of ['connect', 'disconnect', 'message', 'error', 'open', 'close', 'heartbeat']) {
    emitter.addEventListener(type, (event) => seen.push(event));
  }
  return seen;
}

function waitForEvent(seen, type, predicate = () => true, timeoutMs = 15_000) {
  return waitFor(() => seen.find((e) => e.type === type && predicate(e)), { what: `a '${type}' event`, timeoutMs });
}

async function subExists(id) {
  const rows = await stack.query(`SELECT id FROM fhirsub_subscription WHERE id = ${sqlString(id)}`);
  return rows.length > 0;
}

before(async () => {
  key = makeKeyDir();
  const [ntPort, wake] = await freePorts(2);
  wakePort = wake;
  stack = await startStack({
    users: USERS,
    fhirDirectives: fhirsubDirectives({ wsUrl: `ws://127.0.0.1:${ntPort}${WS_PATH}`, keyFile: key.keyFile, lifetime: 3600 }),
    serverDirectives: [`ProxyPass ${WS_PATH} ws://127.0.0.1:${ntPort}${WS_PATH}`],
  });
  clients = clientsFor(stack.fhirUrl);
  nt = await startNotifier({
    stack,
    keyFile: key.keyFile,
    port: ntPort,
    config: {
      RevalidateInterval: 1,
      // Medplum's client creates a Subscription on every (re)connect and never deletes one
      ExpireUnbound: EXPIRE_UNBOUND,
      ExpireUnboundShapes: 'classic',
      PollInterval: 1,
      WakeListen: stack.db === 'sqlite3' ? `127.0.0.1:${wakePort}` : undefined,
    },
  });
  const { MedplumClient } = await importMedplum();
  medplum = new MedplumClient({ baseUrl: `${stack.httpd.baseUrl}/`, fetch: globalThis.fetch.bind(globalThis) });
  // Apache authenticates with Basic; Medplum's client needs a profile to subscribe, which a
  // Medplum server would give at login (there is none here).
  medplum.setBasicAuth('alice', USERS.alice);
  medplum.getProfile = () => ({ resourceType: 'Practitioner', id: 'alice' });
});

after(async () => {
  medplum?.getSubscriptionManager?.().closeWebSocket();
  await sleep(200);
  const log = nt?.log() ?? '';
  await nt?.stop();
  await stopAndCheckLog(stack);
  key?.cleanup();
  assert.deepEqual(notifierProblems(log), [], 'notifier warnings or errors');
});

describe("Medplum's client (@medplum/core subscribeToCriteria)", () => {
  let emitter;
  let seen;
  let master;
  let subscriptionId;

  test('subscribe → Subscription created → token → bind over Apache → handshake (connect event)', async () => {
    master = recorder(medplum.getSubscriptionManager().getMasterEmitter());
    emitter = medplum.subscribeToCriteria('Encounter');
    seen = recorder(emitter);
    const connect = await waitForEvent(seen, 'connect');
    subscriptionId = connect.payload.subscriptionId;
    assert.match(subscriptionId, /^[A-Za-z0-9.-]{1,64}$/);
    // the Subscription Medplum created: classic criteria, websocket, alice's
    const res = await clients.alice.get(`Subscription/${subscriptionId}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.criteria, 'Encounter');
    assert.equal(res.body.channel.type, 'websocket');
    assert.equal(res.body.status, 'active');
    assert.equal(seen.filter((e) => e.type === 'error').length, 0, JSON.stringify(seen.filter((e) => e.type === 'error')));
  });

  test('an event reaches the emitter as a Bundle with the resource in entry[1]', async () => {
    const encounter = { resourceType: 'Encounter', id: 'enc-medplum-1', status: 'finished', class: { code: 'AMB' } };
    await recordEvent(stack, subscriptionId, {
      resourceType: 'Encounter',
      id: encounter.id,
      interaction: 'create',
      body: JSON.stringify(encounter),
      notify: true,
    });
    if (stack.db === 'sqlite3') await sendWake(wakePort, subscriptionId);
    const message = await waitForEvent(seen, 'message');
    const bundle = message.payload;
    assert.equal(bundle.resourceType, 'Bundle');
    assert.equal(bundle.entry[0].resource.resourceType, 'SubscriptionStatus');
    assert.equal(bundle.entry[0].resource.type, 'event-notification');
    assert.equal(bundle.entry[0].resource.subscription.reference, `Subscription/${subscriptionId}`);
    assert.equal(bundle.entry[0].resource.notificationEvent[0].eventNumber, '1');
    assert.deepEqual(bundle.entry[1].resource, encounter);
    assert.equal(master.filter((e) => e.type === 'message').length, 1);
  });

  test('its JSON pings get pongs: no reconnect over 12 s (it reconnects after an unanswered ping)', async () => {
    const opens = master.filter((e) => e.type === 'open').length;
    await sleep(12_000);
    assert.equal(master.filter((e) => e.type === 'open').length, opens, 'the client reconnected');
    assert.equal(master.filter((e) => e.type === 'close').length, 0);
  });

  test('a reconnect: unbind of the old token on the new socket, a new Subscription, a handshake', async () => {
    const from = nt.logSize();
    const connects = seen.filter((e) => e.type === 'connect').length;
    medplum.getSubscriptionManager().getWebSocket().reconnect();
    await waitFor(() => seen.filter((e) => e.type === 'connect').length > connects, { what: 'a new connect event', timeoutMs: 20_000 });
    const newId = seen.filter((e) => e.type === 'connect').at(-1).payload.subscriptionId;
    assert.notEqual(newId, subscriptionId, 'Medplum creates a new Subscription on every reconnect');
    // the unbind of the previous connection's token did not fail
    await nt.waitForLog(/FS20208: .*unbind of grant .*: 0 binding\(s\) removed/, { from });
    assert.doesNotMatch(nt.log(from), /FS2020[1237]/, 'nothing was refused');
    assert.equal(seen.filter((e) => e.type === 'error').length, 0);

    // the abandoned Subscription expires (ExpireUnbound), the bound one stays
    const old = subscriptionId;
    subscriptionId = newId;
    await waitFor(async () => !(await subExists(old)), { what: 'the unbound Subscription to expire', timeoutMs: (EXPIRE_UNBOUND + 10) * 1000 });
    await nt.waitForLog(new RegExp(`FS20106: Subscription/${old} of alice deleted`), { from });
    await sleep(EXPIRE_UNBOUND * 1000 + 1000);
    assert.ok(await subExists(newId), 'the bound Subscription must not expire');

    // and events flow on the new one
    await recordEvent(stack, newId, { resourceType: 'Encounter', id: 'enc-medplum-2', interaction: 'update', notify: true });
    if (stack.db === 'sqlite3') await sendWake(wakePort, newId);
    const message = await waitForEvent(seen, 'message', (e) => e.payload.entry[0].resource.subscription.reference === `Subscription/${newId}`);
    assert.equal(message.payload.entry[1].resource.id, 'enc-medplum-2');
  });

  test('unsubscribe: the client unbinds and closes; the notifier keeps no binding', async () => {
    const from = nt.logSize();
    medplum.unsubscribeFromCriteria('Encounter');
    // Medplum finalises unreferenced criteria after a grace period, then unbinds and closes
    await nt.waitForLog(/FS20303: .*closed/, { from, timeoutMs: 30_000 });
  });
});
