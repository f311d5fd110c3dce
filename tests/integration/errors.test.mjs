// Malformed input gets a 4xx OperationOutcome, never a 5xx, and never crashes httpd; errors
// Apache raises itself under a FHIR base (401, 404, 413, 414, 502, 503) are OperationOutcomes
// too, while paths outside the base keep Apache's HTML.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fhir } from './lib/fhir.mjs';
import { basicAuthDirectives } from './lib/httpd.mjs';
import { freePort } from './lib/ports.mjs';
import { startStack } from './lib/stack.mjs';
import {
  assert4xxOutcome,
  assertOutcome,
  backportBody,
  basicAuthHeader,
  clientsFor,
  countRows,
  createSub,
  fhirsubDirectives,
  issueText,
  makeKeyDir,
  rawGet,
  rawRequest,
  sendBytes,
  sqlString,
  stopAndCheckLog,
  subRow,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';

const LIMITED_PATH = '/limited/R4';
const DROP_PATH = '/drop/R4';
const DOWN_PATH = '/down/R4';
const OPEN_PATH = '/open/R4';
const ANON_PATH = '/anon/R4';
const PRIVATE_PATH = '/private';
const WS_URL = wsUrlFor(9);
const MAX_BODY = 1048576; // FhirSubMaxBodySize default
const LIMIT_REQUEST_BODY = 4096;

let stack;
let key;
let dropper;
let r4;
let alice;
let port;

before(async () => {
  key = makeKeyDir();
  // a "FHIR server" that accepts connections and drops them: mod_proxy answers 502
  dropper = net.createServer((socket) => socket.destroy());
  await new Promise((resolve) => dropper.listen(0, '127.0.0.1', resolve));
  const closedPort = await freePort();
  const loc = (extra = []) => fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, extra });
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: loc(), proxyTo: backend.url },
      { path: LIMITED_PATH, directives: loc([`LimitRequestBody ${LIMIT_REQUEST_BODY}`]) },
      { path: DROP_PATH, directives: loc(), proxyTo: `http://127.0.0.1:${dropper.address().port}/fhir/R4` },
      { path: DOWN_PATH, directives: loc(), proxyTo: `http://127.0.0.1:${closedPort}/fhir/R4` },
      { path: OPEN_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, auth: false }) },
      {
        path: ANON_PATH,
        directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, auth: false, extra: ['FhirSubAnonymous On guest'] }),
      },
      { path: PRIVATE_PATH, directives: basicAuthDirectives('private') },
    ],
  });
  port = stack.httpd.port;
  r4 = clientsFor(stack.fhirUrl);
  alice = r4.alice;
});

after(async () => {
  try {
    await stopAndCheckLog(stack, [
      // the wrong password and the unknown user
      'AH01617',
      'AH01618',
      // mod_proxy reporting the two broken FHIR servers
      'AH01102', // error reading status line (dropped connection)
      'AH00898', // error reading from remote server
      'AH00957', // connect refused
      'AH01114', // failed to make connection to backend
    ]);
  } finally {
    await new Promise((resolve) => (dropper ? dropper.close(resolve) : resolve()));
    key?.cleanup();
  }
});

const aliceAuth = basicAuthHeader('alice', USERS.alice);

function rawPost(path, body, headers = {}) {
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    `Authorization: ${aliceAuth}`,
    'Content-Type: application/fhir+json',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  return [head, body];
}

// A body of `size` bytes sent in chunks of `chunk` bytes (Transfer-Encoding: chunked).
function chunkedBody(size, chunk = 64 * 1024) {
  const out = [];
  const prefix = '{"resourceType":"Subscription","reason":"';
  let sent = 0;
  const piece = (text) => {
    out.push(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
    sent += Buffer.byteLength(text);
  };
  piece(prefix);
  while (sent < size) piece('x'.repeat(Math.min(chunk, size - sent)));
  piece('"}');
  out.push('0\r\n\r\n');
  return out;
}

describe('malformed input gets a 4xx OperationOutcome, never 5xx', () => {
  let mine;

  before(async () => {
    mine = await createSub(alice, backportBody());
  });

  test('bad JSON answers 400 structure', async () => {
    const bodies = {
      truncated: '{"resourceType": "Subscription",',
      trailing: `${JSON.stringify(backportBody())} x`,
      'single quotes': "{'resourceType': 'Subscription'}",
      NaN: '{"resourceType": "Subscription", "x": NaN}',
      comment: '{"resourceType": "Subscription" /* no */}',
      'duplicate member': '{"resourceType":"Subscription","resourceType":"Patient"}',
      'escaped NUL': '{"resourceType":"Subscription\\u0000"}',
      'raw control character': '{"resourceType":"Sub\u0001scription"}',
      'deep nesting': `${'['.repeat(5000)}${']'.repeat(5000)}`,
      'empty body': '',
      whitespace: '  \n ',
      'number out of range': '{"resourceType":"Subscription","x":123456789012345678901234567890}',
    };
    for (const [what, body] of Object.entries(bodies)) {
      const res = await alice.request('POST', 'Subscription', body, { 'Content-Type': 'application/fhir+json' });
      assertOutcome(res, 400);
      assert.match(res.body.issue[0].code, /^(structure|invalid)$/, what);
    }
  });

  test('invalid UTF-8 answers 400', async () => {
    const bodies = [
      Buffer.from('{"resourceType":"Subscription","reason":"\xff"}', 'latin1'),
      Buffer.from('{"resourceType":"Subscription","reason":"\xc0\xaf"}', 'latin1'), // overlong '/'
      Buffer.from('{"resourceType":"Subscription","reason":"\xed\xa0\x80"}', 'latin1'), // surrogate
    ];
    for (const body of bodies) {
      const res = await sendBytes(`${stack.fhirUrl}/Subscription`, { user: 'alice', body });
      const issue = assertOutcome(res, 400, 'structure');
      assert.match(issueText(issue), /utf-8/i);
    }
  });

  test('a body that is not an object answers 400 structure', async () => {
    for (const body of ['[]', '[{"resourceType":"Subscription"}]', '"Subscription"', '42', 'true', 'null']) {
      const res = await alice.request('POST', 'Subscription', body, { 'Content-Type': 'application/fhir+json' });
      const issue = assertOutcome(res, 400, 'structure');
      assert.match(issueText(issue), /object/, body);
    }
  });

  test('a wrong or missing resourceType answers 400', async () => {
    for (const body of [{ resourceType: 'Patient' }, { resourceType: 'Parameters', parameter: [] }, { criteria: 'x' }, { resourceType: 7 }]) {
      const res = await alice.post('Subscription', body);
      const issue = assertOutcome(res, 400, 'invalid');
      assert.match(issueText(issue), /resourceType/);
    }
    // on update too
    assertOutcome(await alice.put(`Subscription/${mine.id}`, { resourceType: 'Patient', id: mine.id }), 400, 'invalid');
  });

  test('a body over 1 MiB answers 413 (Content-Length)', async () => {
    const big = JSON.stringify({ ...backportBody(), reason: 'x'.repeat(MAX_BODY) });
    const res = await alice.post('Subscription', big);
    const issue = assertOutcome(res, 413, 'too-costly');
    assert.match(issueText(issue), /1048576/);
    assertOutcome(await alice.put(`Subscription/${mine.id}`, big), 413, 'too-costly');
    const params = JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'id', valueString: 'x'.repeat(MAX_BODY) }] });
    assertOutcome(await alice.post('Subscription/$status', params), 413, 'too-costly');
    assertOutcome(await alice.post('Subscription/$get-ws-binding-token', params), 413, 'too-costly');
  });

  test('a body over 1 MiB answers 413 (chunked transfer)', async () => {
    const res = await rawRequest(port, rawPost('/fhir/R4/Subscription', '', { 'Transfer-Encoding': 'chunked' }).slice(0, 1).concat(chunkedBody(MAX_BODY + 100_000)));
    assert.equal(res.status, 413, res.raw.slice(0, 300));
    assert.match(res.headers['content-type'], /^application\/fhir\+json/);
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(res.body.issue[0].code, 'too-costly');
  });

  test('a body just under the limit is read and judged on its content', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', reason: 'x'.repeat(MAX_BODY - 100) });
    assert.ok(Buffer.byteLength(body) <= MAX_BODY);
    assertOutcome(await alice.post('Subscription', body), 400, 'invalid');
  });

  test('a form search body over 1 MiB answers 413', {
  }, async () => {
    const res = await alice.request('POST', 'Subscription/_search', `status=${'a'.repeat(MAX_BODY + 10)}`, {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    assertOutcome(res, 413, 'too-costly');
  });

  test('a Content-Type other than FHIR JSON answers 415', async () => {
    const body = JSON.stringify(backportBody());
    for (const ct of ['application/fhir+xml', 'text/plain', 'application/x-www-form-urlencoded', 'application/json-patch+json']) {
      const res = await alice.request('POST', 'Subscription', body, { 'Content-Type': ct });
      assertOutcome(res, 415, 'not-supported');
    }
    assertOutcome(await alice.request('PUT', `Subscription/${mine.id}`, JSON.stringify(mine), { 'Content-Type': 'text/xml' }), 415);
    // application/json and parameters on the media type are fine
    const ok = await alice.request('POST', 'Subscription', body, { 'Content-Type': 'application/json; charset=utf-8' });
    assert.equal(ok.status, 201, ok.text);
  });

  test('_format or Accept asking for XML answers 406', async () => {
    for (const path of ['Subscription?_format=xml', `Subscription/${mine.id}?_format=application/fhir%2Bxml`, 'Subscription/$status?_format=xml']) {
      assertOutcome(await alice.get(path), 406, 'not-supported');
    }
    assertOutcome(await alice.get(`Subscription/${mine.id}`, { Accept: 'application/fhir+xml' }), 406, 'not-supported');
    assertOutcome(await alice.post('Subscription?_format=xml', backportBody()), 406);
    // JSON is fine either way
    assert.equal((await alice.get(`Subscription/${mine.id}?_format=json`)).status, 200);
    assert.equal((await alice.get(`Subscription/${mine.id}`, { Accept: '*/*' })).status, 200);
  });

  test('unknown or malformed parameters answer 400', async () => {
    for (const path of [
      'Subscription?nope=1',
      'Subscription?_summary=true',
      'Subscription/$status?nope=1',
      'Subscription/$get-ws-binding-token?nope=1',
      'Subscription?_id=%ZZ',
      'Subscription?_id=%00',
      'Subscription?=x',
      'Subscription?status=active,,off',
    ]) {
      const res = await alice.get(path);
      assert4xxOutcome(res, path);
      assert.equal(res.status, 400, path);
    }
  });

  test('SQL metacharacters in ids answer 400 or 404, and touch nothing', async () => {
    const rowsBefore = await countRows(stack, 'fhirsub_subscription');
    const ids = [
      "1' OR '1'='1",
      "x'; DROP TABLE fhirsub_subscription; --",
      'x"; DELETE FROM fhirsub_grant; --',
      "Robert'); DROP TABLE fhirsub_subscription;--",
      '%',
      '_',
      '*',
      'a--b', // a valid id: reaches the database as a parameter
      `${mine.id}' OR 'x'='x`,
    ];
    for (const id of ids) {
      const enc = encodeURIComponent(id);
      const results = [
        await alice.get(`Subscription/${enc}`),
        await alice.get(`Subscription/${enc}/_history/1`),
        await alice.put(`Subscription/${enc}`, { ...backportBody(), id }),
        await alice.del(`Subscription/${enc}`),
        await alice.get(`Subscription/${enc}/$status`),
        await alice.get(`Subscription/${enc}/$get-ws-binding-token`),
        await alice.get(`Subscription/$get-ws-binding-token?id=${enc}`),
        await alice.post('Subscription/$get-ws-binding-token', { resourceType: 'Parameters', parameter: [{ name: 'id', valueString: id }] }),
      ];
      for (const res of results) {
        assert4xxOutcome(res, id);
        assert.ok([400, 404].includes(res.status), `${id}: ${res.status}`);
      }
      // filters never match: not the caller's subscriptions, not everybody's
      const search = await alice.get(`Subscription?_id=${enc}`);
      assert.equal(search.status, 200, search.text);
      assert.equal(search.body.total, 0, id);
      const status = await alice.get(`Subscription/$status?id=${enc}`);
      assert.ok([200, 400].includes(status.status), `${id}: $status ${status.status}`);
      if (status.status === 200) assert.equal(status.body.total, 0, id);
    }
    assert.equal(await countRows(stack, 'fhirsub_subscription'), rowsBefore, 'no subscription created or deleted');
    assert.equal((await subRow(stack, mine.id)).version_id, '1', 'mine untouched');
    assert.equal(await countRows(stack, 'fhirsub_grant', `owner <> ${sqlString('alice')}`), 0);
  });

  test('too long and invalid ids answer 400 (or 404 when Apache refuses the path)', async () => {
    assertOutcome(await alice.get(`Subscription/${'a'.repeat(65)}`), 400, 'invalid');
    assertOutcome(await alice.get(`Subscription/${'a'.repeat(64)}`), 404, 'not-found');
    assertOutcome(await alice.get(`Subscription/${'a'.repeat(4000)}`), 400, 'invalid');
    for (const id of ['a_b', 'a%20b', '%C3%A9t%C3%A9', 'a%2Cb', 'a%3Bb']) {
      assertOutcome(await alice.get(`Subscription/${id}`), 400, 'invalid');
    }
    // Apache itself refuses an encoded NUL or slash in the path
    for (const id of ['a%00b', 'a%2Fb']) {
      const res = await alice.get(`Subscription/${id}`);
      assert4xxOutcome(res, id);
    }
    assertOutcome(await alice.get(`Subscription/${mine.id}/_history/${"1'--"}`), 404, 'not-found');
  });

  test('methods a Subscription endpoint does not take answer 405', async () => {
    assertOutcome(await alice.patch(`Subscription/${mine.id}`, [{ op: 'replace', path: '/status', value: 'off' }]), 405);
    assertOutcome(await alice.del('Subscription'), 405);
    assertOutcome(await alice.put('Subscription', backportBody()), 405);
    assertOutcome(await alice.post(`Subscription/${mine.id}/_history/1`, backportBody()), 405);
    assertOutcome(await alice.request('OPTIONS', 'Subscription/$status'), 405);
  });

  test('paths under Subscription that name nothing answer 404', async () => {
    assertOutcome(await alice.get(`Subscription/${mine.id}/_history`), 404, 'not-found');
    assertOutcome(await alice.get(`Subscription/${mine.id}/foo/bar`), 404, 'not-found');
    assertOutcome(await alice.get('Subscription/a/b/c/d/e/f'), 404);
  });

  test('after all that, the database is intact', async () => {
    const read = await alice.get(`Subscription/${mine.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, 'active');
    assert.equal((await subRow(stack, mine.id)).owner, 'alice');
    // and both tables are still there
    assert.ok((await countRows(stack, 'fhirsub_subscription')) >= 1);
    assert.ok((await countRows(stack, 'fhirsub_grant')) >= 0);
  });
});

describe('errors Apache produces under a FHIR base are OperationOutcomes', () => {
  test('401 without credentials, with a challenge', async () => {
    for (const path of ['Subscription', 'metadata', 'Patient', 'Subscription/$status']) {
      const res = await r4.anon.get(path);
      assertOutcome(res, 401, 'login');
      assert.match(res.headers['www-authenticate'] ?? '', /^Basic realm="fhirsub"/, path);
    }
  });

  test('401 with a wrong password or an unknown user', async () => {
    const wrong = await fhir(stack.fhirUrl, { user: 'alice', password: 'nope' }).get('Subscription');
    assertOutcome(wrong, 401, 'login');
    assert.ok(wrong.headers['www-authenticate']);
    const unknown = await fhir(stack.fhirUrl, { user: 'mallory', password: USERS.alice }).post('Subscription', backportBody());
    assertOutcome(unknown, 401, 'login');
  });

  test('401 from the module where no auth module set a user', async () => {
    const res = await clientsFor(`${stack.httpd.baseUrl}${OPEN_PATH}`).anon.post('Subscription', backportBody());
    assertOutcome(res, 401, 'login');
    assert.match(res.headers['www-authenticate'] ?? '', /^Basic /);
  });

  test('FhirSubAnonymous On serves unauthenticated callers as the configured user', async () => {
    const anon = clientsFor(`${stack.httpd.baseUrl}${ANON_PATH}`).anon;
    const sub = await createSub(anon, backportBody());
    assert.equal((await subRow(stack, sub.id)).owner, 'guest');
    assert.equal((await anon.get(`Subscription/${sub.id}`)).status, 200);
  });

  test('414 for a 10 KB URL under the base; Apache\'s HTML elsewhere', async () => {
    const long = 'a'.repeat(10 * 1024);
    const res = await alice.get(`Subscription?_id=${long}`);
    assertOutcome(res, 414);
    const outside = await fetch(`${stack.httpd.baseUrl}/elsewhere?x=${long}`);
    assert.equal(outside.status, 414);
    assert.match(outside.headers.get('content-type'), /^text\/html/);
    assert.match(await outside.text(), /<html>/i);
  });

  test('404 from Apache under a base without FHIR server; Apache\'s HTML elsewhere', async () => {
    const limited = clientsFor(`${stack.httpd.baseUrl}${LIMITED_PATH}`).alice;
    assertOutcome(await limited.get('Patient/1'), 404, 'not-found');
    const outside = await fetch(`${stack.httpd.baseUrl}/nothing-here`);
    assert.equal(outside.status, 404);
    assert.match(outside.headers.get('content-type'), /^text\/html/);
    const privateRes = await fetch(`${stack.httpd.baseUrl}${PRIVATE_PATH}/x`);
    assert.equal(privateRes.status, 401);
    assert.match(privateRes.headers.get('content-type'), /^text\/html/);
  });

  test('413 from LimitRequestBody', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', text: 'x'.repeat(LIMIT_REQUEST_BODY + 100) });
    const res = await rawRequest(port, rawPost(`${LIMITED_PATH}/Patient`, body, { 'Content-Length': Buffer.byteLength(body) }));
    assert.equal(res.status, 413, res.raw.slice(0, 300));
    assert.match(res.headers['content-type'], /^application\/fhir\+json/);
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(res.body.issue[0].code, 'too-costly');
  });

  test('413 from LimitRequestBody on a transaction Bundle posted to the base (its body is read before it is forwarded)', async () => {
    const entry = { resource: { resourceType: 'Patient', text: 'x'.repeat(LIMIT_REQUEST_BODY) }, request: { method: 'POST', url: 'Patient' } };
    const body = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [entry] });
    for (const headers of [{ 'Content-Length': Buffer.byteLength(body) }, { 'Transfer-Encoding': 'chunked' }]) {
      const payload = headers['Transfer-Encoding'] ? `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
      const res = await rawRequest(port, rawPost(`${LIMITED_PATH}/`, payload, headers));
      assert.equal(res.status, 413, res.raw.slice(0, 300));
      assert.match(res.headers['content-type'], /^application\/fhir\+json/, res.raw.slice(0, 600));
      assert.equal(res.body?.resourceType, 'OperationOutcome', res.raw.slice(0, 600));
      assert.equal(res.body.issue[0].code, 'too-costly');
    }
  });

  test('413 from LimitRequestBody on a Subscription endpoint', {
  }, async () => {
    const body = JSON.stringify({ ...backportBody(), reason: 'x'.repeat(LIMIT_REQUEST_BODY + 100) });
    const res = await rawRequest(port, rawPost(`${LIMITED_PATH}/Subscription`, body, { 'Content-Length': Buffer.byteLength(body) }));
    assert.equal(res.status, 413, res.raw.slice(0, 400));
    assert.equal(res.body?.resourceType, 'OperationOutcome');
  });

  // After a 502 mod_proxy closes the client connection although it advertised keep-alive,
  // which breaks fetch's connection reuse (Apache's behaviour, with or without the module):
  // these go over raw one-shot connections.
  test('502 when the FHIR server drops the connection', async () => {
    const res = await rawGet(port, `${DROP_PATH}/Patient/1`, { user: 'alice' });
    assertOutcome(res, 502);
    assert.match(issueText(res.body.issue[0]), /FHIR server/);
  });

  test('503 when the FHIR server is down (connection refused)', async () => {
    const res = await rawGet(port, `${DOWN_PATH}/Patient`, { user: 'alice' });
    assertOutcome(res, 503, 'transient');
  });

  test('the Subscription endpoints keep working while the FHIR server is down', async () => {
    const down = clientsFor(`${stack.httpd.baseUrl}${DOWN_PATH}`).alice;
    const sub = await createSub(down, backportBody());
    assert.equal((await down.get(`Subscription/${sub.id}`)).status, 200);
  });
});
