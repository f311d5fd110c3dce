// Tests of the harness itself: the FHIR backend, httpd with mod_proxy (without mod_fhirsub),
// basic auth, PostgreSQL, and that nothing is left running afterwards.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { startBackend } from './lib/backend.mjs';
import { fhir } from './lib/fhir.mjs';
import { assertNoCrash, basicAuthDirectives, startHttpd, unexpectedLogLines } from './lib/httpd.mjs';
import { psql, psqlRows, startPostgres } from './lib/pg.mjs';
import { freePort, isPortOpen } from './lib/ports.mjs';
import { startStack } from './lib/stack.mjs';
import { isProcessAlive, waitFor, withTimeout } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VERSIONED_LOCATION = /\/Patient\/([^/]+)\/_history\/([^/]+)$/;

function assertFhirJson(res) {
  assert.match(res.headers['content-type'] ?? '', /^application\/fhir\+json/);
}

// The CRUD conversation every FHIR base under test must support; run directly and via httpd.
function crudTests(getClient, expectedOrigin) {
  let patient;

  test('create answers 201 with Location, ETag and Last-Modified', async () => {
    const res = await getClient().post('Patient', { resourceType: 'Patient', name: [{ family: 'Harness' }] });
    assert.equal(res.status, 201, res.text);
    assertFhirJson(res);
    patient = res.body;
    const [, id, vid] = VERSIONED_LOCATION.exec(res.headers.location) ?? [];
    assert.equal(id, patient.id);
    assert.equal(vid, patient.meta.versionId);
    assert.ok(res.headers.location.startsWith(`${expectedOrigin()}/fhir/R4/Patient/`), res.headers.location);
    assert.equal(res.headers.etag, `W/"${patient.meta.versionId}"`);
    assert.equal(new Date(res.headers['last-modified']).toUTCString(), new Date(patient.meta.lastUpdated).toUTCString());
  });

  test('read and vread return the resource', async () => {
    const read = await getClient().get(`Patient/${patient.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.name[0].family, 'Harness');
    assert.equal(read.headers.etag, `W/"${patient.meta.versionId}"`);
    const vread = await getClient().get(`Patient/${patient.id}/_history/${patient.meta.versionId}`);
    assert.equal(vread.status, 200);
    assert.equal(vread.body.id, patient.id);
  });

  test('update makes a new version; a stale If-Match gets 412', async () => {
    const oldEtag = `W/"${patient.meta.versionId}"`;
    const res = await getClient().put(`Patient/${patient.id}`, { ...patient, active: true });
    assert.equal(res.status, 200, res.text);
    assert.notEqual(res.body.meta.versionId, patient.meta.versionId);
    assert.equal(res.headers.etag, `W/"${res.body.meta.versionId}"`);
    const stale = await getClient().put(`Patient/${patient.id}`, patient, { 'If-Match': oldEtag });
    assert.equal(stale.status, 412, stale.text);
    patient = res.body;
  });

  test('JSON patch applies', async () => {
    const res = await getClient().patch(`Patient/${patient.id}`, [{ op: 'add', path: '/gender', value: 'other' }]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.gender, 'other');
  });

  test('search finds the resource', async () => {
    const res = await getClient().get('Patient?family=Harness');
    assert.equal(res.status, 200);
    assert.equal(res.body.resourceType, 'Bundle');
    assert.equal(res.body.type, 'searchset');
    assert.deepEqual(res.body.entry.map((e) => e.resource.id), [patient.id]);
  });

  test('Prefer: return=minimal gives an empty body', async () => {
    const res = await getClient().post('Patient', { resourceType: 'Patient' }, { Prefer: 'return=minimal' });
    assert.equal(res.status, 201);
    assert.equal(res.text, '');
    assert.match(res.headers.location, VERSIONED_LOCATION);
  });

  test('transaction bundle creates entries and resolves urn:uuid references', async () => {
    const patientUrn = 'urn:uuid:7d2c8a38-4f5e-4c1b-9b7e-2f0d3c1a5e61';
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: patientUrn, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient' } },
        {
          request: { method: 'POST', url: 'Observation' },
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: patientUrn } },
        },
      ],
    };
    const res = await getClient().post('', bundle);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.type, 'transaction-response');
    assert.deepEqual(res.body.entry.map((e) => e.response.status), ['201', '201']);
    const observation = res.body.entry[1].resource;
    assert.equal(observation.subject.reference, `Patient/${res.body.entry[0].resource.id}`);
  });

  test('delete, then read is 404', async () => {
    const res = await getClient().del(`Patient/${patient.id}`);
    assert.ok([200, 204].includes(res.status), res.text);
    const gone = await getClient().get(`Patient/${patient.id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.resourceType, 'OperationOutcome');
  });

  test('errors come back as OperationOutcome', async () => {
    const badJson = await getClient().post('Patient', '{not json');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.resourceType, 'OperationOutcome');
    const wrongType = await getClient().post('Patient', { resourceType: 'Observation' });
    assert.equal(wrongType.status, 400);
  });

  test('metadata answers a CapabilityStatement', async () => {
    const res = await getClient().get('metadata');
    assert.equal(res.status, 200);
    assert.equal(res.body.resourceType, 'CapabilityStatement');
  });
}

describe('FHIR backend, direct', () => {
  let backend;
  before(async () => {
    backend = await startBackend();
  });
  after(() => backend?.stop());

  test('reports its FHIR base URL on 127.0.0.1', () => {
    assert.equal(backend.url, `http://127.0.0.1:${backend.port}/fhir/R4`);
  });
  crudTests(() => fhir(backend.url), () => `http://127.0.0.1:${backend.port}`);
});

describe(`httpd + mod_proxy in front of the backend (module not loaded, db ${process.env.FHIRSUB_DB ?? 'sqlite3'})`, () => {
  let stack;
  before(async () => {
    stack = await startStack({ module: false });
  });
  after(async () => {
    const log = stack?.httpd?.errorLog() ?? '';
    await stack?.stop();
    assertNoCrash(log);
    assert.deepEqual(unexpectedLogLines(log), []);
  });

  test('the stack is wired as documented', () => {
    assert.equal(stack.fhirUrl, `http://127.0.0.1:${stack.httpd.port}/fhir/R4`);
    assert.equal(stack.httpd.modulePath, null);
    assert.match(fs.readFileSync(stack.httpd.confPath, 'utf8'), new RegExp(`ProxyPass ${stack.backend.url}`));
  });
  // ProxyPassReverse must turn the backend's Location into one on httpd's port.
  crudTests(() => fhir(stack.fhirUrl), () => `http://127.0.0.1:${stack.httpd.port}`);

  test('requests reach the backend through the proxy', () => {
    assert.match(stack.httpd.accessLog(), /"GET \/fhir\/R4\/Patient\?family=Harness HTTP\/1.1" 200/);
  });
});

describe('basic auth through httpd', () => {
  let stack;
  before(async () => {
    stack = await startStack({ module: false, users: { alice: 's3cret', bob: 'hunter2' }, fhirDirectives: basicAuthDirectives('fhir') });
  });
  after(() => stack?.stop());

  test('no credentials: 401 with a challenge', async () => {
    const res = await fhir(stack.fhirUrl).get('metadata');
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate'], /^Basic realm="fhir"/);
  });

  test('wrong password or unknown user: 401', async () => {
    assert.equal((await fhir(stack.fhirUrl, { user: 'alice', password: 'nope' }).get('metadata')).status, 401);
    assert.equal((await fhir(stack.fhirUrl, { user: 'mallory', password: 's3cret' }).get('metadata')).status, 401);
  });

  test('good credentials: 200, for each user', async () => {
    for (const [user, password] of [['alice', 's3cret'], ['bob', 'hunter2']]) {
      const res = await fhir(stack.fhirUrl, { user, password }).get('metadata');
      assert.equal(res.status, 200, `${user}: ${res.text}`);
    }
  });
});

describe('httpd lifecycle', () => {
  let httpd;
  before(async () => {
    httpd = await startHttpd({ module: false, modulePath: '/nonexistent/mod_fhirsub.so', db: { driver: 'sqlite3' } });
  });
  after(() => httpd?.stop());

  test('runs a parent and worker children as www-data', () => {
    const pids = httpd.pids();
    assert.ok(pids.length >= 2, `pids: ${pids}`);
    const uids = pids.map((pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)[1]);
    if (process.getuid() === 0) assert.ok(uids.includes('33'), `uids: ${uids}`);
  });

  for (const mode of ['graceful', 'hup', 'full']) {
    test(`restart (${mode}) keeps serving`, async () => {
      await httpd.restart({ mode });
      const res = await fetch(`${httpd.baseUrl}/nothing-here`);
      assert.equal(res.status, 404);
    });
  }

  test('stop() leaves no httpd process and frees the port', async () => {
    const pids = httpd.pids();
    await httpd.stop();
    assert.deepEqual(pids.filter(isProcessAlive), []);
    assert.equal(await isPortOpen(httpd.port), false);
    assert.equal(fs.existsSync(httpd.dir), process.env.FHIRSUB_KEEP === '1');
  });

  test('a config error fails fast with httpd\'s message', async () => {
    const started = Date.now();
    await assert.rejects(startHttpd({ module: false, serverDirectives: ['NoSuchDirective on'] }), /NoSuchDirective/);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('websocket through httpd mod_proxy_wstunnel', () => {
  let echo;
  let httpd;
  before(async () => {
    const port = await freePort();
    echo = new WebSocketServer({ host: '127.0.0.1', port });
    echo.on('connection', (socket) => socket.on('message', (data) => socket.send(data.toString())));
    httpd = await startHttpd({ module: false, locations: [{ path: '/ws', proxyTo: `ws://127.0.0.1:${port}/` }] });
  });
  after(async () => {
    await httpd?.stop();
    await new Promise((resolve) => (echo ? echo.close(resolve) : resolve()));
  });

  test('messages go both ways', async () => {
    const client = await connectWs(`ws://127.0.0.1:${httpd.port}/ws`);
    client.send({ hello: 'fhirsub' });
    assert.deepEqual(await client.next({ timeoutMs: 5000 }), { hello: 'fhirsub' });
    await client.close();
  });
});

describe('PostgreSQL throwaway cluster', () => {
  let pg;
  before(async () => {
    pg = await startPostgres();
  });
  after(() => pg?.stop());

  test('accepts SQL as user fhirsub on 127.0.0.1', async () => {
    assert.equal(pg.conninfo, `host=127.0.0.1 port=${pg.port} dbname=postgres user=fhirsub`);
    assert.equal(await psql(pg.conninfo, 'SELECT current_user'), 'fhirsub');
    await psql(pg.conninfo, "CREATE TABLE t (n int, s text); INSERT INTO t VALUES (1, 'a|b'), (2, NULL)");
    assert.deepEqual(await psqlRows(pg.conninfo, 'SELECT n, s FROM t ORDER BY n'), [['1', 'a|b'], ['2', '']]);
  });

  test('SQL errors reject', async () => {
    await assert.rejects(psql(pg.conninfo, 'SELECT * FROM missing_table'), /missing_table/);
  });

  test('httpd starts with DBDriver pgsql pointing at it', async () => {
    const httpd = await startHttpd({ module: false, db: { driver: 'pgsql', params: pg.conninfo } });
    try {
      assert.match(fs.readFileSync(httpd.confPath, 'utf8'), /DBDriver pgsql/);
      assert.deepEqual(unexpectedLogLines(httpd.errorLog()), []);
    } finally {
      await httpd.stop();
    }
  });

  test('stop() shuts the cluster down', async () => {
    await pg.stop();
    assert.equal(await isPortOpen(pg.port), false);
    assert.equal(fs.existsSync(pg.dir), process.env.FHIRSUB_KEEP === '1');
  });
});

describe('stack database helpers', () => {
  for (const db of ['sqlite3', 'pgsql']) {
    test(`${db}: query() reads what was written`, async () => {
      const stack = await startStack({ db, module: false });
      try {
        await stack.query('CREATE TABLE probe (k text); INSERT INTO probe VALUES (\'x\')');
        assert.deepEqual(await stack.query('SELECT k FROM probe'), [['x']]);
      } finally {
        await stack.stop();
      }
    });
  }
});

// Runs the fixture, which starts a stack and abandons it; returns what it reported.
async function runAbandoningChild(mode, db) {
  const child = spawn(process.execPath, [path.join(HERE, 'fixtures/stack-then-abandon.mjs'), mode, db], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const info = await waitFor(() => /^\{.*\}$/m.exec(out)?.[0], { what: `fixture output (${out})`, timeoutMs: 30_000 });
  if (mode === 'wait') child.kill('SIGTERM');
  await withTimeout(exited, 20_000, 'fixture exit');
  return JSON.parse(info);
}

describe('nothing is left behind by an abandoned stack', () => {
  for (const [mode, db] of [['wait', 'pgsql'], ['exit', 'sqlite3']]) {
    test(`${mode === 'wait' ? 'SIGTERM' : 'natural exit'} with ${db}`, async () => {
      const info = await runAbandoningChild(mode, db);
      assert.deepEqual(info.httpdPids.filter(isProcessAlive), []);
      for (const [name, port] of Object.entries({ httpd: info.httpdPort, backend: info.backendPort, pg: info.pgPort })) {
        if (port) assert.equal(await isPortOpen(port), false, `${name} port ${port} still open`);
      }
      assert.equal(fs.existsSync(info.dir), process.env.FHIRSUB_KEEP === '1');
    });
  }
});
