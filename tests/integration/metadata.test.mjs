// [base]/metadata and [base]/OperationDefinition/[id]: the FHIR server's CapabilityStatement
// augmented on its way through mod_proxy, our own statement where there is no FHIR server,
// and the OperationDefinitions of our operations (checked against the seed definitions).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fhir } from './lib/fhir.mjs';
import { startStack } from './lib/stack.mjs';
import {
  ALL_TOPICS,
  URL,
  assertOutcome,
  clientsFor,
  fhirsubDirectives,
  makeKeyDir,
  stopAndCheckLog,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';

const R5_PATH = '/fhir/R5';
const OWN_R4_PATH = '/own/R4';
const RICH_PATH = '/rich/R4';
const NOWS_PATH = '/nows/R4';
const WS_URL = wsUrlFor(9, 'subscriptions-r4');
const WS_URL_R5 = wsUrlFor(9, 'subscriptions-r5');
const OPS = ['status', 'events', 'get-ws-binding-token'];

// ---- a FHIR server with a richer CapabilityStatement than the test backend's ---------------

const OLD_WS = 'wss://old.example.org/ws';
const RICH_CS = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2025-01-01',
  kind: 'instance',
  software: { name: 'Rich FHIR', version: '9.9' },
  fhirVersion: '4.0.1',
  format: ['json', 'xml'],
  instantiates: ['http://example.org/CapabilityStatement/other'],
  rest: [
    { mode: 'client', documentation: 'client side' },
    {
      mode: 'server',
      security: { cors: true },
      extension: [
        { url: 'http://example.org/ext', valueString: 'kept' },
        { url: URL.websocketExt, valueUri: OLD_WS },
      ],
      resource: [
        { type: 'Patient', interaction: [{ code: 'read' }, { code: 'search-type' }] },
        { type: 'Subscription', interaction: [{ code: 'read' }], documentation: 'the old one' },
        { type: 'Observation', interaction: [{ code: 'search-type' }] },
      ],
      operation: [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }],
    },
  ],
};

function startRichServer() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url, headers: req.headers });
    const url = new globalThis.URL(req.url, 'http://x');
    if (url.pathname !== '/fhir/R4/metadata') {
      res.writeHead(404, { 'Content-Type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }));
      return;
    }
    if (url.searchParams.get('_format') === 'xml') {
      res.writeHead(200, { 'Content-Type': 'application/fhir+xml' });
      res.end('<CapabilityStatement xmlns="http://hl7.org/fhir"><status value="active"/></CapabilityStatement>');
    } else if (url.searchParams.has('broken')) {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json' });
      res.end('{"resourceType": "CapabilityStatement", ');
    } else if (url.searchParams.has('fail')) {
      res.writeHead(500, { 'Content-Type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', id: 'backend-failure', issue: [{ severity: 'fatal', code: 'exception' }] }));
    } else {
      res.writeHead(200, { 'Content-Type': 'application/fhir+json; charset=utf-8', ETag: 'W/"cs1"' });
      res.end(JSON.stringify(RICH_CS));
    }
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, seen, port: server.address().port }));
  });
}

let stack;
let key;
let rich;
let r4;
let r5;
let own;
let richClient;
let noWs;

before(async () => {
  key = makeKeyDir();
  rich = await startRichServer();
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile }), proxyTo: backend.url },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL_R5, keyFile: key.keyFile, version: 'R5' }) },
      { path: OWN_R4_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile }) },
      { path: RICH_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile }), proxyTo: `http://127.0.0.1:${rich.port}/fhir/R4` },
      { path: NOWS_PATH, directives: fhirsubDirectives({ wsUrl: null, keyFile: null }) },
    ],
  });
  r4 = clientsFor(stack.fhirUrl).alice;
  r5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`).alice;
  own = clientsFor(`${stack.httpd.baseUrl}${OWN_R4_PATH}`).alice;
  richClient = clientsFor(`${stack.httpd.baseUrl}${RICH_PATH}`).alice;
  noWs = clientsFor(`${stack.httpd.baseUrl}${NOWS_PATH}`).alice;
});

after(async () => {
  try {
    // the broken statement test makes the module warn that it passed it on unchanged
    await stopAndCheckLog(stack, [/FS10650: backend CapabilityStatement not augmented/]);
  } finally {
    await new Promise((resolve) => (rich ? rich.server.close(resolve) : resolve()));
    key?.cleanup();
  }
});

function serverRest(cs) {
  const rests = cs.rest.filter((r) => r.mode === 'server');
  assert.equal(rests.length, 1, 'one rest entry with mode server');
  return rests[0];
}

function subscriptionEntry(rest) {
  const entries = rest.resource.filter((r) => r.type === 'Subscription');
  assert.equal(entries.length, 1, 'one Subscription entry');
  return entries[0];
}

/** What an augmented or own statement must say about the websocket service. */
function assertSubscriptionService(cs, { version, wsUrl }) {
  const rest = serverRest(cs);
  const wsExts = (rest.extension ?? []).filter((e) => e.url === URL.websocketExt);
  if (wsUrl) assert.deepEqual(wsExts, [{ url: URL.websocketExt, valueUri: wsUrl }]);
  else assert.deepEqual(wsExts, []);
  const sub = subscriptionEntry(rest);
  assert.deepEqual(sub.interaction.map((i) => i.code), ['read', 'create', 'update', 'delete', 'search-type']);
  assert.deepEqual(sub.searchParam.map((p) => p.name).sort(), ['_id', 'status', 'type', 'url']);
  const opdef = version === 'R4' ? URL.opdefR4 : URL.opdefR5;
  assert.deepEqual(sub.operation, OPS.map((name) => ({ name, definition: opdef(name) })));
  if (version === 'R4') {
    assert.deepEqual(sub.supportedProfile, [URL.backportSubscription]);
    const topics = sub.extension.filter((e) => e.url === URL.topicCanonicalExt).map((e) => e.valueCanonical);
    assert.deepEqual(topics.sort(), [...ALL_TOPICS].sort());
    assert.ok(cs.instantiates.includes(URL.backportServerCs), 'instantiates the backport server statement');
  } else {
    assert.equal(sub.supportedProfile, undefined);
    assert.equal(cs.instantiates, undefined);
  }
  return { rest, sub };
}

describe('metadata through mod_proxy: the FHIR server\'s statement, augmented', () => {
  test('the backend\'s statement is kept; the websocket service is added', async () => {
    const res = await r4.get('metadata');
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers['content-type'], /json/);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text), 'Content-Length of the new body');
    const cs = res.body;
    assertSubscriptionService(cs, { version: 'R4', wsUrl: WS_URL });
    const direct = await fetch(`${stack.backend.url}/metadata`, { headers: { Accept: 'application/fhir+json' } });
    assert.equal(direct.status, 200);
    const original = await direct.json();
    // take away exactly what the module adds: the rest is the backend's, unchanged
    const stripped = structuredClone(cs);
    delete stripped.instantiates;
    delete stripped.rest[0].extension;
    delete stripped.rest[0].resource;
    assert.deepEqual(stripped, original);
  });

  test('a richer statement: its other resources, extensions, operations and rest entries are kept', async () => {
    const res = await richClient.get('metadata');
    assert.equal(res.status, 200, res.text);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text));
    assert.equal(res.headers.etag, undefined, 'the backend\'s ETag no longer matches the body');
    const cs = res.body;
    const { rest, sub } = assertSubscriptionService(cs, { version: 'R4', wsUrl: WS_URL });
    assert.deepEqual(cs.software, RICH_CS.software);
    assert.deepEqual(cs.format, RICH_CS.format);
    assert.deepEqual(cs.instantiates, ['http://example.org/CapabilityStatement/other', URL.backportServerCs]);
    assert.deepEqual(cs.rest[0], RICH_CS.rest[0]);
    assert.deepEqual(rest.security, { cors: true });
    assert.deepEqual(rest.operation, RICH_CS.rest[1].operation);
    // the old websocket URL is replaced, the other extension kept
    assert.deepEqual(rest.extension, [
      { url: 'http://example.org/ext', valueString: 'kept' },
      { url: URL.websocketExt, valueUri: WS_URL },
    ]);
    // Patient and Observation as they were; Subscription replaced in its place
    assert.deepEqual(rest.resource.map((r) => r.type), ['Patient', 'Subscription', 'Observation']);
    assert.deepEqual(rest.resource[0], RICH_CS.rest[1].resource[0]);
    assert.deepEqual(rest.resource[2], RICH_CS.rest[1].resource[2]);
    assert.equal(sub.documentation, undefined);
  });

  test('the FHIR server is asked for an uncompressed statement', async () => {
    rich.seen.length = 0;
    const res = await richClient.get('metadata', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], undefined);
    assertSubscriptionService(res.body, { version: 'R4', wsUrl: WS_URL });
    const request = rich.seen.find((s) => s.url.startsWith('/fhir/R4/metadata'));
    assert.ok(request, 'the statement was asked for');
    assert.equal(request.headers['accept-encoding'], undefined);
  });

  test('a statement that is not JSON, an error, or broken JSON passes unchanged', async () => {
    const xml = await richClient.get('metadata?_format=xml', { Accept: 'application/fhir+xml' });
    assert.equal(xml.status, 200);
    assert.equal(xml.text, '<CapabilityStatement xmlns="http://hl7.org/fhir"><status value="active"/></CapabilityStatement>');
    const failed = await richClient.get('metadata?fail=1');
    assert.equal(failed.status, 500);
    assert.equal(failed.body.id, 'backend-failure', 'the FHIR server\'s own OperationOutcome');
    const broken = await richClient.get('metadata?broken=1');
    assert.equal(broken.status, 200);
    assert.equal(broken.text, '{"resourceType": "CapabilityStatement", ');
  });

  test('other paths under the base are not touched', async () => {
    rich.seen.length = 0;
    const res = await richClient.get('Patient/123');
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    assert.equal(rich.seen.length, 1);
  });
});

describe('metadata without a FHIR server: our own statement', () => {
  test('R4: a complete instance statement with the backport service', async () => {
    const res = await own.get('metadata');
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers['content-type'], /^application\/fhir\+json/);
    const cs = res.body;
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.status, 'active');
    assert.equal(cs.kind, 'instance');
    assert.equal(cs.fhirVersion, '4.0.1');
    assert.ok(!Number.isNaN(Date.parse(cs.date)));
    assert.equal(cs.software.name, 'mod_fhirsub');
    assert.equal(cs.implementation.url, `${stack.httpd.baseUrl}${OWN_R4_PATH}`);
    assert.ok(cs.format.includes('json'));
    assert.deepEqual(cs.instantiates, [URL.backportServerCs]);
    assertSubscriptionService(cs, { version: 'R4', wsUrl: WS_URL });
  });

  test('R5: FHIR 5.0.0, the R5 operation definitions, no backport elements', async () => {
    const res = await r5.get('metadata');
    assert.equal(res.status, 200, res.text);
    const cs = res.body;
    assert.equal(cs.fhirVersion, '5.0.0');
    assert.equal(cs.implementation.url, `${stack.httpd.baseUrl}${R5_PATH}`);
    const { sub } = assertSubscriptionService(cs, { version: 'R5', wsUrl: WS_URL_R5 });
    assert.equal(sub.extension, undefined, 'no backport topic extensions in R5');
  });

  test('R5: every interaction the statement advertises is served', {
  }, async () => {
    const cs = (await r5.get('metadata')).body;
    const topicEntry = serverRest(cs).resource.find((r) => r.type === 'SubscriptionTopic');
    assert.ok(topicEntry, 'R5 lists SubscriptionTopic');
    const search = await r5.get('SubscriptionTopic');
    assert.equal(search.status, 200, search.text);
    assert.equal(search.body.resourceType, 'Bundle');
    assert.equal(search.body.total, ALL_TOPICS.length);
    const read = await r5.get('SubscriptionTopic/encounter-start');
    assert.equal(read.status, 200, read.text);
  });

  test('a location without FhirSubWebSocketURL advertises no websocket endpoint', async () => {
    const res = await noWs.get('metadata');
    assert.equal(res.status, 200, res.text);
    assertSubscriptionService(res.body, { version: 'R4', wsUrl: null });
  });

  test('_format=xml answers 406', async () => {
    assertOutcome(await own.get('metadata?_format=xml'), 406, 'not-supported');
  });
});

// The parameters of the seed definitions (name, use, min, max, type; scope where R5 has it).
const TOKEN_PARAMS = [
  { name: 'id', use: 'in', min: 0, max: '*', type: 'id' },
  { name: 'token', use: 'out', min: 1, max: '1', type: 'string' },
  { name: 'expiration', use: 'out', min: 1, max: '1', type: 'dateTime' },
  { name: 'subscription', use: 'out', min: 0, max: '*', type: 'string' },
  { name: 'websocket-url', use: 'out', min: 1, max: '1', type: 'url' },
];
const STATUS_PARAMS = [
  { name: 'id', use: 'in', min: 0, max: '*', type: 'id' },
  { name: 'status', use: 'in', min: 0, max: '*', type: 'code' },
  { name: 'return', use: 'out', min: 1, max: '1', type: 'Bundle' },
];

function paramShape(parameters, withScope) {
  return parameters.map((p) => ({
    name: p.name,
    use: p.use,
    min: p.min,
    max: p.max,
    type: p.type,
    ...(withScope && p.scope ? { scope: p.scope } : {}),
  }));
}

describe('OperationDefinitions', () => {
  test('R4 backport-subscription-get-ws-binding-token: affectsState false, the seed\'s parameters', async () => {
    const res = await r4.get('OperationDefinition/backport-subscription-get-ws-binding-token');
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers['content-type'], /^application\/fhir\+json/);
    const od = res.body;
    assert.equal(od.resourceType, 'OperationDefinition');
    assert.equal(od.id, 'backport-subscription-get-ws-binding-token');
    assert.equal(od.url, URL.opdefR4('get-ws-binding-token'));
    assert.equal(od.kind, 'operation');
    assert.equal(od.code, 'get-ws-binding-token');
    assert.equal(od.affectsState, false);
    assert.deepEqual(od.resource, ['Subscription']);
    assert.equal(od.system, false);
    assert.equal(od.type, true);
    assert.equal(od.instance, true);
    assert.deepEqual(paramShape(od.parameter, false), TOKEN_PARAMS);
    assert.ok(od.parameter.every((p) => p.scope === undefined), 'parameter.scope is R5 only');
  });

  test('R4 backport-subscription-status and -events', async () => {
    const status = await r4.get('OperationDefinition/backport-subscription-status');
    assert.equal(status.status, 200, status.text);
    assert.equal(status.body.url, URL.opdefR4('status'));
    assert.equal(status.body.affectsState, false);
    assert.equal(status.body.type, true);
    assert.equal(status.body.instance, true);
    assert.deepEqual(paramShape(status.body.parameter, false), STATUS_PARAMS);
    const binding = status.body.parameter.find((p) => p.name === 'status').binding;
    assert.equal(binding.strength, 'required');
    assert.match(binding.valueSet, /^http:\/\/hl7\.org\/fhir\/ValueSet\/subscription-status/);
    const events = await r4.get('OperationDefinition/backport-subscription-events');
    assert.equal(events.status, 200);
    assert.equal(events.body.url, URL.opdefR4('events'));
    assert.equal(events.body.type, false);
    assert.equal(events.body.instance, true);
  });

  test('R5 Subscription-get-ws-binding-token: affectsState true, parameters as the seed', async () => {
    const res = await r5.get('OperationDefinition/Subscription-get-ws-binding-token');
    assert.equal(res.status, 200, res.text);
    const od = res.body;
    assert.equal(od.id, 'Subscription-get-ws-binding-token');
    assert.equal(od.url, URL.opdefR5('get-ws-binding-token'));
    assert.equal(od.code, 'get-ws-binding-token');
    assert.equal(od.affectsState, true);
    assert.equal(od.system, false);
    assert.equal(od.type, true);
    assert.equal(od.instance, true);
    const expected = TOKEN_PARAMS.map((p) => (p.name === 'id' ? { ...p, scope: ['type'] } : p));
    assert.deepEqual(paramShape(od.parameter, true), expected);
  });

  test('R5 Subscription-status: as the seed', async () => {
    const res = await r5.get('OperationDefinition/Subscription-status');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.url, URL.opdefR5('status'));
    assert.equal(res.body.affectsState, false);
    const expected = STATUS_PARAMS.map((p) => (p.use === 'in' ? { ...p, scope: ['type'] } : p));
    assert.deepEqual(paramShape(res.body.parameter, true), expected);
  });

  test('an OperationDefinition id that is not ours goes to the FHIR server', async () => {
    // one the FHIR server has
    const created = await fetch(`${stack.backend.url}/OperationDefinition`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'OperationDefinition', status: 'active', kind: 'operation', name: 'Mine', code: 'mine', system: true, type: false, instance: false }),
    });
    assert.equal(created.status, 201);
    const mine = await created.json();
    const res = await r4.get(`OperationDefinition/${mine.id}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.code, 'mine');
    // the R5 id at the R4 base is not ours either: the FHIR server's own 404
    const direct = await fhir(stack.backend.url).get('OperationDefinition/Subscription-get-ws-binding-token');
    const proxied = await r4.get('OperationDefinition/Subscription-get-ws-binding-token');
    assert.equal(proxied.status, 404);
    assert.deepEqual(proxied.body, direct.body);
    // without a FHIR server: Apache's 404, as an OperationOutcome
    assertOutcome(await r5.get('OperationDefinition/backport-subscription-get-ws-binding-token'), 404, 'not-found');
  });

  test('OperationDefinitions are read-only and JSON-only', async () => {
    assertOutcome(await r4.put('OperationDefinition/backport-subscription-status', { resourceType: 'OperationDefinition' }), 405);
    assertOutcome(await r4.del('OperationDefinition/backport-subscription-status'), 405);
    assertOutcome(await r4.get('OperationDefinition/backport-subscription-status?_format=xml'), 406, 'not-supported');
  });
});
