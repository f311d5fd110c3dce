// Configuration errors stop httpd with a clear message: `apache2 -t` on generated configs for
// the directive checks, a real start for the checks that run once the whole configuration is
// known. The database kind does not matter here (SQLite).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_MODULE_PATH, assertNoCrash, startHttpd, unexpectedLogLines } from './lib/httpd.mjs';
import { makeTempDir, removeDir, run } from './lib/util.mjs';
import { TOPICS_DIR, randomSecret, wsUrlFor } from './lib/fhirsub.mjs';

const HTTPD_BIN = process.env.FHIRSUB_HTTPD || '/usr/sbin/apache2';
const MODULES_DIR = process.env.FHIRSUB_HTTPD_MODULES || '/usr/lib/apache2/modules';
const MODULE_PATH = process.env.FHIRSUB_MODULE ?? DEFAULT_MODULE_PATH;
const WS_URL = wsUrlFor(9);

let dir;
let keyFile;
let n = 0;

before(() => {
  assert.ok(fs.existsSync(MODULE_PATH), `module not built: ${MODULE_PATH}`);
  dir = makeTempDir('fhirsub-startup-');
  keyFile = writeFile('token.key', randomSecret(48));
});

after(() => removeDir(dir));

function writeFile(name, content) {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** A complete minimal config; `location` replaces the FHIR base's lines, `modules` the list. */
function config({ location, modules = ['mpm_event', 'authz_core', 'dbd'], fhirsub = true, server = [] }) {
  const base = path.join(dir, `conf${++n}`);
  fs.mkdirSync(base, { recursive: true });
  return [
    `ServerRoot ${base}`,
    'ServerName 127.0.0.1',
    'Listen 127.0.0.1:1',
    `PidFile ${base}/httpd.pid`,
    `ErrorLog ${base}/error.log`,
    ...modules.map((m) => `LoadModule ${m}_module ${MODULES_DIR}/mod_${m}.so`),
    ...(fhirsub ? [`LoadModule fhirsub_module ${MODULE_PATH}`] : []),
    ...(modules.includes('dbd') ? ['DBDriver sqlite3', `DBDParams ${base}/db.sqlite`] : []),
    ...server,
    '<Location /fhir/R4>',
    ...location.map((l) => `    ${l}`),
    '</Location>',
    '',
  ].join('\n');
}

const good = (extra = []) => [
  'FhirSub On',
  `FhirSubWebSocketURL ${WS_URL}`,
  `FhirSubTokenKey HS256 ${keyFile}`,
  `FhirSubTopic ${TOPICS_DIR}`,
  ...extra,
];

/** Runs `apache2 -t -f <file>`; resolves to {ok, output}. */
async function configTest(text) {
  const file = writeFile(`httpd-${n}.conf`, text);
  try {
    const { stdout, stderr } = await run(HTTPD_BIN, ['-t', '-f', file], { timeoutMs: 10_000 });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    return { ok: false, output: err.message };
  }
}

async function assertRefused(text, message) {
  const { ok, output } = await configTest(text);
  assert.equal(ok, false, `apache2 -t accepted:\n${text}\n${output}`);
  assert.match(output, message);
  assert.doesNotMatch(output, /Segmentation fault|core dumped/);
  return output;
}

describe('apache2 -t', () => {
  test('a complete configuration is accepted (the control case)', async () => {
    const { ok, output } = await configTest(config({ location: good() }));
    assert.ok(ok, output);
    assert.match(output, /Syntax OK/);
  });

  test('FhirSub On without mod_dbd loaded', async () => {
    const out = await assertRefused(config({ location: good(), modules: ['mpm_event', 'authz_core'] }), /FhirSub On needs mod_dbd/);
    assert.match(out, /LoadModule dbd_module/);
  });

  test('FhirSub On outside a <Location>', async () => {
    await assertRefused(config({ location: ['Require all granted'], server: ['FhirSub On'] }), /FhirSub not allowed here/);
  });

  test('a key file shorter than 32 bytes for HS256 (31 refused, 32 accepted)', async () => {
    const short = writeFile('short.key', randomSecret(31));
    const out = await assertRefused(config({ location: ['FhirSub On', `FhirSubWebSocketURL ${WS_URL}`, `FhirSubTokenKey HS256 ${short}`] }), /FhirSubTokenKey/);
    assert.match(out, /31 bytes/);
    assert.match(out, /32/);
    // trailing whitespace (`echo secret > key`) is not part of the secret
    const newline = writeFile('newline.key', Buffer.concat([randomSecret(31), Buffer.from('\n')]));
    const nl = await assertRefused(config({ location: ['FhirSub On', `FhirSubTokenKey HS256 ${newline}`] }), /FhirSubTokenKey/);
    assert.match(nl, /31 bytes/);
    const exact = writeFile('exact.key', randomSecret(32));
    const { ok, output } = await configTest(config({ location: ['FhirSub On', `FhirSubWebSocketURL ${WS_URL}`, `FhirSubTokenKey HS256 ${exact}`] }));
    assert.ok(ok, output);
    const hs512 = await assertRefused(config({ location: ['FhirSub On', `FhirSubTokenKey HS512 ${exact}`] }), /FhirSubTokenKey/);
    assert.match(hs512, /64/);
  });

  test('a missing key file', async () => {
    const missing = path.join(dir, 'no-such.key');
    const out = await assertRefused(config({ location: ['FhirSub On', `FhirSubWebSocketURL ${WS_URL}`, `FhirSubTokenKey HS256 ${missing}`] }), /FhirSubTokenKey/);
    assert.match(out, /no-such\.key/);
  });

  test('an unsupported token algorithm, or an HMAC secret for RS256', async () => {
    await assertRefused(config({ location: ['FhirSub On', `FhirSubTokenKey none ${keyFile}`] }), /FhirSubTokenKey: algorithm 'none' is not supported/);
    await assertRefused(config({ location: ['FhirSub On', `FhirSubTokenKey RS256 ${keyFile}`] }), /FhirSubTokenKey: .*holds no PEM key/);
  });

  test('a bad FhirSubFhirVersion value', async () => {
    await assertRefused(config({ location: good(['FhirSubFhirVersion R6']) }), /FhirSubFhirVersion takes R4 .* or R5/);
    await assertRefused(config({ location: good(['FhirSubFhirVersion 4.0.1']) }), /FhirSubFhirVersion/);
  });

  test('a websocket URL that is not ws:// or wss://', async () => {
    await assertRefused(config({ location: ['FhirSub On', 'FhirSubWebSocketURL http://127.0.0.1/ws', `FhirSubTokenKey HS256 ${keyFile}`] }), /FhirSubWebSocketURL .* must start with ws:\/\/ or wss:\/\//);
  });

  test('out-of-range values of the other directives', async () => {
    await assertRefused(config({ location: good(['FhirSubTokenLifetime 0']) }), /FhirSubTokenLifetime takes seconds between 1 and 604800/);
    await assertRefused(config({ location: good(['FhirSubTokenLifetime 604801']) }), /FhirSubTokenLifetime/);
    await assertRefused(config({ location: good(['FhirSubPayloadContent id-only everything']) }), /FhirSubPayloadContent: 'everything'/);
    await assertRefused(config({ location: good(['FhirSubMaxBodySize 10']) }), /FhirSubMaxBodySize takes bytes/);
    await assertRefused(config({ location: good(['FhirSubHeartbeatRange 60 10']) }), /FhirSubHeartbeatRange/);
    await assertRefused(config({ location: good(['FhirSubServerBase ftp://x']) }), /FhirSubServerBase/);
  });

  describe('invalid topic files', () => {
    const topic = (over) => JSON.stringify({
      resourceType: 'SubscriptionTopic',
      url: 'http://example.org/fhir/SubscriptionTopic/t',
      status: 'active',
      resourceTrigger: [{ resource: 'Encounter', supportedInteraction: ['create'], queryCriteria: { current: 'status=finished' } }],
      canFilterBy: [{ resource: 'Encounter', filterParameter: 'patient' }],
      ...over,
    });

    test('the control topic file is accepted', async () => {
      const file = writeFile('topics-ok/t.json', topic({}));
      const { ok, output } = await configTest(config({ location: ['FhirSub On', `FhirSubTopic ${file}`] }));
      assert.ok(ok, output);
    });

    test('not JSON', async () => {
      const file = writeFile('topics-bad/broken.json', '{"resourceType": "SubscriptionTopic",');
      const out = await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${file}`] }), /FhirSubTopic/);
      assert.match(out, /broken\.json/);
    });

    test('a filter parameter the server cannot evaluate', async () => {
      const file = writeFile('topics-bad/filter.json', topic({ canFilterBy: [{ resource: 'Encounter', filterParameter: 'length' }] }));
      const out = await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${file}`] }), /filter\.json/);
      assert.match(out, /length/);
    });

    test('a trigger with FHIRPath criteria only', async () => {
      const trigger = [{ resource: 'Encounter', supportedInteraction: ['update'], fhirPathCriteria: "%current.status = 'finished'" }];
      const file = writeFile('topics-bad/fhirpath.json', topic({ resourceTrigger: trigger }));
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${file}`] }), /fhirpath\.json.*FHIRPath criteria are not supported/s);
    });

    test('not a SubscriptionTopic, or without url', async () => {
      const patient = writeFile('topics-bad/patient.json', JSON.stringify({ resourceType: 'Patient' }));
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${patient}`] }), /patient\.json/);
      const noUrl = writeFile('topics-bad/nourl.json', topic({ url: undefined }));
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${noUrl}`] }), /nourl\.json/);
    });

    test('a directory with a bad file, and a missing path', async () => {
      const bad = path.join(dir, 'topics-dir');
      writeFile('topics-dir/good.json', topic({}));
      writeFile('topics-dir/bad.json', 'not json');
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${bad}`] }), /bad\.json/);
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${path.join(dir, 'nowhere')}`] }), /FhirSubTopic: cannot read/);
    });

    test('two topics with the same url', async () => {
      writeFile('topics-dup/a.json', topic({}));
      writeFile('topics-dup/b.json', topic({}));
      await assertRefused(config({ location: ['FhirSub On', `FhirSubTopic ${path.join(dir, 'topics-dup')}`] }), /already defined/);
    });
  });

  test('a websocket URL without a token key fails the configuration test too', {
  }, async () => {
    await assertRefused(config({ location: ['FhirSub On', `FhirSubWebSocketURL ${WS_URL}`] }), /FhirSubTokenKey is not/);
  });
});

describe('starting httpd', () => {
  test('a websocket URL without a token key stops the start with a clear message', async () => {
    await assert.rejects(
      startHttpd({
        db: { driver: 'sqlite3' },
        locations: [{ path: '/fhir/R4', directives: ['FhirSub On', `FhirSubWebSocketURL ${WS_URL}`] }],
        timeoutMs: 10_000,
      }),
      /FS10601.*<Location \/fhir\/R4>: FhirSubWebSocketURL is set but FhirSubTokenKey is not/s,
    );
  });

  test('without FhirSubWebSocketURL httpd starts and says websocket subscriptions are off there', async () => {
    const httpd = await startHttpd({
      db: { driver: 'sqlite3' },
      locations: [{ path: '/fhir/R4', directives: ['FhirSub On', `FhirSubTopic ${TOPICS_DIR}`, 'FhirSubAnonymous On'] }],
    });
    let log;
    try {
      const res = await fetch(`${httpd.baseUrl}/fhir/R4/metadata`);
      assert.equal(res.status, 200);
      log = httpd.errorLog();
    } finally {
      await httpd.stop();
    }
    assert.match(log, /FS10602: mod_fhirsub: <Location \/fhir\/R4>: no FhirSubWebSocketURL, websocket subscriptions are not enabled there/);
    assertNoCrash(log);
    assert.deepEqual(unexpectedLogLines(log), []);
  });
});
