// `make install DESTDIR=...` from the built tree: every file lands where it belongs, with this
// build's paths; the installed programs answer --help/--version; Debian's a2enmod enables the
// installed fhirsub.load (with mod_dbd) and httpd loads the module through mods-enabled;
// `apache2 -t` accepts the shipped example site (Basic, and OAuth with
// mod_auth_openidc really loaded); and the example run for real (TLS, Basic, the notifier
// through mod_proxy_wstunnel) keeps a binding token sent as ?token= out of every log.
// The example uses SQLite whatever FHIRSUB_DB says.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startBackend } from './lib/backend.mjs';
import { REPO_ROOT, classicBody, randomSecret } from './lib/fhirsub.mjs';
import { startHttpd } from './lib/httpd.mjs';
import { mintToken, notifierProblems, startNotifier } from './lib/notifier.mjs';
import { freePort } from './lib/ports.mjs';
import { DEFAULT_TIMEOUT_MS, capture, isRoot, makeTempDir, removeDir, run, waitFor } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const HTTPD_BIN = process.env.FHIRSUB_HTTPD || '/usr/sbin/apache2';
const OPENIDC = 'mod_auth_openidc.so';
const INSTALL_TIMEOUT_MS = 180_000;

let tmp;
let dest; // DESTDIR
let dirs; // make print-install-dirs, e.g. {sbindir: '/usr/local/sbin', ...}
let installOutput;

/** The DESTDIR path of an installed path. */
const inDest = (p) => path.join(dest, p);

function readInstalled(p) {
  return fs.readFileSync(inDest(p), 'utf8');
}

async function installDirs() {
  const { stdout } = await run('make', ['-s', '--no-print-directory', '-C', REPO_ROOT, 'print-install-dirs']);
  return Object.fromEntries(stdout.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
}

// As root, install as an unprivileged user when it can read the tree: DESTDIR installs must
// not need root. Returns [cmd, args] prefix.
function installUser() {
  if (!isRoot()) return { prefix: [], who: 'the current user' };
  const probe = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'test', '-r', path.join(REPO_ROOT, 'Makefile')]);
  if (probe.status !== 0) return { prefix: [], who: 'root (nobody cannot read the tree)' };
  return { prefix: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'], who: 'nobody' };
}

before(async () => {
  tmp = makeTempDir('fhirsub-install-');
  dest = path.join(tmp, 'dest');
  fs.mkdirSync(dest);
  dirs = await installDirs();
  // Up to date first (as the tree's owner), so the install itself writes only into DESTDIR.
  await run('make', ['-s', '-C', REPO_ROOT], { timeoutMs: INSTALL_TIMEOUT_MS });
  const { prefix, who } = installUser();
  if (prefix.length) spawnSync('chown', ['nobody:nogroup', dest]);
  const [cmd, ...args] = [...prefix, 'make', '-C', REPO_ROOT, 'install', `DESTDIR=${dest}`];
  const { code, stdout, stderr } = await capture(cmd, args, { timeoutMs: INSTALL_TIMEOUT_MS });
  installOutput = `make install as ${who}:\n${stdout}${stderr}`;
  assert.equal(code, 0, installOutput);
});

after(() => removeDir(tmp));

describe('make install DESTDIR', () => {
  test('puts every file where it belongs', () => {
    const expected = [
      [path.join(dirs.httpdlibexecdir, 'mod_fhirsub.so'), 'the module, where apxs says'],
      [path.join(dirs.sbindir, 'fhirsub-notifier'), 'the notifier'],
      [path.join(dirs.bindir, 'fhirsub-admin'), 'the admin tool'],
      [path.join(dirs.apachemodsdir, 'fhirsub.load'), 'for a2enmod'],
      [path.join(dirs.apachemodsdir, 'fhirsub.conf'), 'for a2enmod'],
      [path.join(dirs.fhirsubconfdir, 'fhirsub-notifier.conf'), 'the notifier configuration'],
      [path.join(dirs.fhirsubexampledir, 'httpd-fhirsub.conf'), 'the example site'],
      [path.join(dirs.fhirsubexampledir, 'fhirsub-notifier.conf'), 'the pristine notifier configuration'],
      [path.join(dirs.systemdsystemunitdir, 'fhirsub-notifier.service'), 'the systemd unit'],
      [path.join(dirs.man8dir, 'fhirsub-notifier.8'), 'a man page'],
      [path.join(dirs.man8dir, 'fhirsub-admin.8'), 'a man page'],
      [path.join(dirs.datadir, 'fhirsub/console/index.html'), 'the console (the example site\'s commented Alias)'],
    ];
    for (const [file, what] of expected) {
      assert.ok(fs.statSync(inDest(file)).isFile(), `${what}: ${file}\n${installOutput}`);
    }
    for (const exe of [path.join(dirs.sbindir, 'fhirsub-notifier'), path.join(dirs.bindir, 'fhirsub-admin')]) {
      assert.ok(fs.statSync(inDest(exe)).mode & 0o111, `${exe} is executable`);
    }
    const topics = fs.readdirSync(path.join(REPO_ROOT, 'conf/topics')).filter((f) => f.endsWith('.json'));
    assert.ok(topics.length > 0);
    assert.deepEqual(fs.readdirSync(inDest(path.join(dirs.fhirsubconfdir, 'topics'))).sort(), topics.sort());
    assert.ok(fs.statSync(inDest(dirs.fhirsubstatedir)).isDirectory(), 'the database directory');
    assert.ok(!fs.existsSync(inDest(path.join(dirs.httpdlibexecdir, 'mod_fhirsub.la'))), 'no libtool archive among the modules');
  });

  test('the installed files name this build\'s directories', () => {
    const unit = readInstalled(path.join(dirs.systemdsystemunitdir, 'fhirsub-notifier.service'));
    const conf = path.join(dirs.fhirsubconfdir, 'fhirsub-notifier.conf');
    assert.match(unit, new RegExp(`^ExecStart=${dirs.sbindir}/fhirsub-notifier -c ${conf}$`, 'm'));
    assert.match(unit, new RegExp(`^ReadWritePaths=${dirs.fhirsubstatedir}$`, 'm'));
    const site = readInstalled(path.join(dirs.fhirsubexampledir, 'httpd-fhirsub.conf'));
    assert.match(site, new RegExp(`^\\s*FhirSubTokenKey HS256 ${dirs.fhirsubconfdir}/token.key$`, 'm'));
    assert.match(site, new RegExp(`^DBDParams ${dirs.fhirsubstatedir}/fhirsub.db$`, 'm'));
    const notifierConf = readInstalled(conf);
    assert.match(notifierConf, new RegExp(`^DBParams ${dirs.fhirsubstatedir}/fhirsub.db$`, 'm'));
    if (dirs.fhirsubconfdir !== '/etc/fhirsub') {
      for (const text of [unit, site, notifierConf]) assert.doesNotMatch(text, /(^|[^/\w])\/etc\/fhirsub/);
    }
  });

  test('fhirsub.load loads the installed module, with mod_dbd as a2enmod dependency', async () => {
    const load = readInstalled(path.join(dirs.apachemodsdir, 'fhirsub.load'));
    const so = path.join(dirs.httpdlibexecdir, 'mod_fhirsub.so');
    assert.match(load, new RegExp(`^LoadModule fhirsub_module ${so}$`, 'm'));
    assert.match(load, /^# Depends: dbd$/m);
    // apxs agrees on where modules go
    const { stdout } = await run('apxs', ['-q', 'LIBEXECDIR']);
    assert.equal(stdout.trim(), dirs.httpdlibexecdir);
  });

  test('a second install keeps configuration an admin changed, beside the shipped text', async () => {
    const conf = inDest(path.join(dirs.fhirsubconfdir, 'fhirsub-notifier.conf'));
    const shipped = fs.readFileSync(conf, 'utf8');
    fs.writeFileSync(conf, `${shipped}LogLevel info\n`);
    const { stdout } = await run('make', ['-C', REPO_ROOT, 'install', `DESTDIR=${dest}`], { timeoutMs: INSTALL_TIMEOUT_MS });
    assert.match(stdout, /kept .*fhirsub-notifier\.conf \(changed locally\)/);
    assert.equal(fs.readFileSync(conf, 'utf8'), `${shipped}LogLevel info\n`);
    assert.equal(fs.readFileSync(`${conf}.new`, 'utf8'), shipped);
    fs.writeFileSync(conf, shipped);
    fs.rmSync(`${conf}.new`);
  });
});

describe('installed programs', () => {
  test('fhirsub-notifier --help, --version and its man page', async () => {
    const bin = inDest(path.join(dirs.sbindir, 'fhirsub-notifier'));
    const help = await run(bin, ['--help']);
    assert.match(help.stdout, /^usage: fhirsub-notifier /);
    assert.match(help.stdout, new RegExp(`default ${dirs.fhirsubconfdir}/fhirsub-notifier\\.conf`));
    for (const opt of ['--config', '--option', '--test', '--version', '--help']) assert.ok(help.stdout.includes(opt), opt);
    assert.equal((await run(bin, ['-h'])).stdout, help.stdout);
    assert.match((await run(bin, ['--version'])).stdout, /^fhirsub-notifier \d+\.\d+\.\d+\n$/);
    const bad = await capture(bin, ['--no-such-option']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /usage: fhirsub-notifier/);
    await assertManPage(path.join(dirs.man8dir, 'fhirsub-notifier.8'), 'fhirsub-notifier');
  });

  test('every notifier configuration key is in its man page', () => {
    const source = fs.readFileSync(path.join(REPO_ROOT, 'notifier/nt_config.c'), 'utf8');
    const keys = [...source.matchAll(/strcasecmp\(key, "(\w+)"\)/g)].map((m) => m[1]);
    assert.ok(keys.length > 20, `keys found in nt_config.c: ${keys}`);
    const page = readInstalled(path.join(dirs.man8dir, 'fhirsub-notifier.8'));
    const docs = fs.readFileSync(path.join(REPO_ROOT, 'docs/NOTIFIER.md'), 'utf8');
    for (const key of keys) {
      assert.ok(page.includes(key), `man page lacks ${key}`);
      assert.ok(docs.includes(`\`${key}`), `docs/NOTIFIER.md lacks ${key}`);
    }
  });

  test('fhirsub-admin --help, --version and its man page', async () => {
    const bin = inDest(path.join(dirs.bindir, 'fhirsub-admin'));
    assert.match((await run(bin, ['--help'])).stdout, /^usage: fhirsub-admin /);
    assert.match((await run(bin, ['--version'])).stdout, /^fhirsub-admin \d+\.\d+\.\d+/);
    await assertManPage(path.join(dirs.man8dir, 'fhirsub-admin.8'), 'fhirsub-admin');
  });

  test('the installed notifier accepts the installed configuration', async () => {
    const etc = makeEtc();
    const conf = localize(readInstalled(path.join(dirs.fhirsubconfdir, 'fhirsub-notifier.conf')), { etc, state: tmp });
    const file = path.join(tmp, 'notifier-check.conf');
    fs.writeFileSync(file, conf);
    const res = await capture(inDest(path.join(dirs.sbindir, 'fhirsub-notifier')), ['-t', '-c', file]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /configuration OK/);
    fs.writeFileSync(file, `${conf}NoSuchKey 1\n`);
    const broken = await capture(inDest(path.join(dirs.sbindir, 'fhirsub-notifier')), ['-t', '-c', file]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /FS20001: configuration error: .*unknown key NoSuchKey/);
  });

  test('systemd accepts the unit', async (t) => {
    if (!fs.existsSync('/usr/bin/systemd-analyze')) return t.skip('systemd-analyze is not installed');
    // verify also checks that ExecStart is executable: point it into DESTDIR
    const unit = path.join(tmp, 'fhirsub-notifier.service');
    const text = readInstalled(path.join(dirs.systemdsystemunitdir, 'fhirsub-notifier.service'));
    fs.writeFileSync(unit, text.replaceAll(`${dirs.sbindir}/`, `${inDest(dirs.sbindir)}/`));
    const res = await capture('systemd-analyze', ['verify', '--man=no', unit]);
    assert.equal(res.code, 0, `${res.stdout}${res.stderr}`);
    assert.equal(res.stderr, '', 'no warnings (unknown keys are only warnings)');
  });
});

/** Renders a man page without warnings and checks its sections. */
async function assertManPage(file, name) {
  const res = await capture('groff', ['-man', '-Tutf8', '-ww', '-z', inDest(file)]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, '', `groff warnings for ${file}`);
  const text = readInstalled(file);
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SEE ALSO']) {
    assert.match(text, new RegExp(`^\\.SH "?${section}"?$`, 'm'), `${name}.8: section ${section}`);
  }
  assert.match(text, new RegExp(`^${name} \\\\- `, 'm'));
}

// ---- the example site under apache2 ------------------------------------------------

/** The installed configuration directory copied, plus what an admin adds: key, passwords. */
function makeEtc() {
  const etc = path.join(tmp, `etc-${Math.random().toString(36).slice(2, 8)}`);
  fs.cpSync(inDest(dirs.fhirsubconfdir), etc, { recursive: true });
  fs.chmodSync(etc, 0o755);
  fs.writeFileSync(path.join(etc, 'token.key'), randomSecret(48));
  fs.chmodSync(path.join(etc, 'token.key'), 0o644);
  return etc;
}

/**
 * Installed text with this test's places: the configuration and state directories, the
 * module in DESTDIR, a test certificate, and ports for the FHIR server, the notifier and its
 * wake-up socket.
 */
function localize(text, { etc, state, cert, ports = {} }) {
  let out = text
    .replaceAll(dirs.fhirsubconfdir, etc)
    .replaceAll(dirs.fhirsubstatedir, state)
    .replaceAll(path.join(dirs.httpdlibexecdir, 'mod_fhirsub.so'), inDest(path.join(dirs.httpdlibexecdir, 'mod_fhirsub.so')));
  if (cert) {
    out = out.replaceAll('/etc/ssl/certs/ssl-cert-snakeoil.pem', cert.cert).replaceAll('/etc/ssl/private/ssl-cert-snakeoil.key', cert.key);
  }
  if (ports.https) out = out.replaceAll('<VirtualHost *:443>', `<VirtualHost *:${ports.https}>`).replaceAll('wss://fhir.example.org/', `wss://127.0.0.1:${ports.https}/`);
  if (ports.fhir) out = out.replaceAll('http://127.0.0.1:8080/', `http://127.0.0.1:${ports.fhir}/`);
  if (ports.notifier) out = out.replaceAll('ws://127.0.0.1:8091/', `ws://127.0.0.1:${ports.notifier}/`);
  if (ports.wake) out = out.replaceAll('127.0.0.1:8092', `127.0.0.1:${ports.wake}`);
  return out;
}

function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const res = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  return { cert, key, pem: fs.readFileSync(cert) };
}

const JWKS_LINE = 'OIDCOAuthVerifyJwksUri https://idp.example.org/oauth2/jwks';

/**
 * The httpd lines that stand in for Debian's apache2.conf + a2enmod + a2ensite. With
 * oauthSecret the site validates bearer tokens signed with that HMAC key instead of the
 * identity provider's published keys (the one line that needs the network).
 */
function siteIncludes(dir, { etc, state, cert, ports, logDir, oauthSecret }) {
  const installed = (p) => localize(readInstalled(p), { etc, state, cert, ports });
  let site = installed(path.join(dirs.fhirsubexampledir, 'httpd-fhirsub.conf'));
  if (oauthSecret) {
    assert.ok(site.includes(JWKS_LINE), JWKS_LINE);
    site = site.replace(JWKS_LINE, `OIDCOAuthVerifySharedKeys hex##${oauthSecret.toString('hex')}`);
  }
  const files = {
    'fhirsub.load': installed(path.join(dirs.apachemodsdir, 'fhirsub.load')),
    'fhirsub.conf': installed(path.join(dirs.apachemodsdir, 'fhirsub.conf')),
    'site.conf': site,
  };
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return [
    // what Debian's apache2.conf and envvars provide
    'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined',
    `Define APACHE_LOG_DIR ${logDir}`,
    ...Object.keys(files).map((name) => `Include ${path.join(dir, name)}`),
  ];
}

const MODULES_DIR = process.env.FHIRSUB_HTTPD_MODULES || '/usr/lib/apache2/modules';
const SITE_MODULES = ['mpm_event', 'authn_core', 'authz_core', 'authz_user', 'auth_basic', 'authn_file', 'dbd', 'proxy', 'proxy_http', 'proxy_wstunnel', 'ssl'];

async function configTest(extraModules, defines) {
  const dir = fs.mkdtempSync(path.join(tmp, 'conftest-'));
  const etc = makeEtc();
  const cert = makeCert(dir);
  const lines = [
    `ServerRoot ${dir}`,
    'ServerName 127.0.0.1',
    `PidFile ${dir}/httpd.pid`,
    `ErrorLog ${dir}/error.log`,
    'Listen 127.0.0.1:443 https',
    ...[...SITE_MODULES, ...extraModules].map((m) => `LoadModule ${m}_module ${MODULES_DIR}/mod_${m}.so`),
    ...siteIncludes(dir, { etc, state: dir, cert, ports: {}, logDir: dir }),
  ];
  fs.writeFileSync(path.join(dir, 'httpd.conf'), `${lines.join('\n')}\n`);
  return capture(HTTPD_BIN, ['-t', '-f', path.join(dir, 'httpd.conf'), ...defines.flatMap((d) => ['-D', d])]);
}

describe('a2enmod fhirsub', () => {
  test('enables the module and mod_dbd; httpd loads the installed module through mods-enabled', async (t) => {
    if (!fs.existsSync('/usr/sbin/a2enmod')) return t.skip('a2enmod (Debian\'s apache2) is not installed');
    // a Debian-like configuration directory holding the installed files (the module path
    // pointed into DESTDIR) and the system's dbd.load
    const root = fs.mkdtempSync(path.join(tmp, 'a2enmod-'));
    const conf = path.join(root, 'apache2');
    for (const d of ['mods-available', 'mods-enabled']) fs.mkdirSync(path.join(conf, d), { recursive: true });
    for (const f of ['fhirsub.load', 'fhirsub.conf']) {
      const text = localize(readInstalled(path.join(dirs.apachemodsdir, f)), { etc: '/nonexistent', state: '/nonexistent' });
      fs.writeFileSync(path.join(conf, 'mods-available', f), text);
    }
    const dbdLoad = '/etc/apache2/mods-available/dbd.load';
    fs.writeFileSync(path.join(conf, 'mods-available', 'dbd.load'), fs.existsSync(dbdLoad) ? fs.readFileSync(dbdLoad) : `LoadModule dbd_module ${MODULES_DIR}/mod_dbd.so\n`);
    fs.writeFileSync(path.join(root, 'envvars'), '');
    const env = { ...process.env, APACHE_CONFDIR: conf, APACHE_STATE_DIRECTORY: path.join(root, 'state'), APACHE_ENVVARS: path.join(root, 'envvars') };
    const res = await capture('a2enmod', ['fhirsub'], { env });
    assert.equal(res.code, 0, `${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /Considering dependency dbd for fhirsub/);
    for (const f of ['fhirsub.load', 'fhirsub.conf', 'dbd.load']) {
      assert.equal(fs.readlinkSync(path.join(conf, 'mods-enabled', f)), `../mods-available/${f}`);
    }
    // what Debian's apache2.conf does with mods-enabled; FhirSub On needs both modules
    fs.writeFileSync(path.join(conf, 'apache2.conf'), [
      `ServerRoot ${conf}`,
      'ServerName 127.0.0.1',
      `PidFile ${root}/httpd.pid`,
      `ErrorLog ${root}/error.log`,
      'Listen 127.0.0.1:80',
      ...['mpm_event', 'authz_core'].map((m) => `LoadModule ${m}_module ${MODULES_DIR}/mod_${m}.so`),
      'IncludeOptional mods-enabled/*.load',
      'IncludeOptional mods-enabled/*.conf',
      'DBDriver sqlite3',
      `DBDParams ${root}/fhirsub.db`,
      '<Location /fhir/R4>',
      '    FhirSub On',
      '</Location>',
      '',
    ].join('\n'));
    const check = await capture(HTTPD_BIN, ['-t', '-D', 'DUMP_MODULES', '-f', path.join(conf, 'apache2.conf')]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^ fhirsub_module \(shared\)$/m);
    assert.match(check.stdout, /^ dbd_module \(shared\)$/m);
  });
});

describe('the example site', () => {
  test('apache2 -t accepts it with Basic authentication', async () => {
    const res = await configTest([], []);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Syntax OK/);
  });

  test('apache2 -t accepts it with OAuth bearer tokens (mod_auth_openidc loaded)', async (t) => {
    if (!fs.existsSync(path.join(MODULES_DIR, OPENIDC))) {
      return t.skip('libapache2-mod-auth-openidc is not installed (scripts/test installs it)');
    }
    const res = await configTest(['auth_openidc'], ['FHIRSUB_OAUTH']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Syntax OK/);
    // the OAuth branch really is parsed: without the module its directives are unknown
    const without = await configTest([], ['FHIRSUB_OAUTH']);
    assert.notEqual(without.code, 0);
    assert.match(without.stderr, /Invalid command 'OIDCOAuthVerifyJwksUri'/);
  });

  describe('running, with a binding token in the websocket URL', () => {
    let site;
    let notifier;
    let ctx;

    before(async () => {
      site = await startSite();
      await run('htpasswd', ['-bc', path.join(site.etc, 'htpasswd'), 'alice', 'alice-pw']);
      const stack = { db: 'sqlite3', httpd: { dbFile: path.join(site.state, 'fhirsub.db') } };
      notifier = await startNotifier({ stack, keyFile: path.join(site.etc, 'token.key'), port: site.ports.notifier, config: { WakeListen: `127.0.0.1:${site.ports.wake}` } });
      ({ ctx } = site);
    });

    after(async () => {
      await notifier?.stop();
      await site?.stop();
    });

    test('the token is used, and no log holds it', async () => {
      const auth = { Authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` };
      const created = await httpsJson(ctx, 'POST', 'Subscription', classicBody(), auth);
      assert.equal(created.status, 201, created.text);
      const tokenRes = await httpsJson(ctx, 'GET', `Subscription/${created.body.id}/$get-ws-binding-token`, undefined, auth);
      assert.equal(tokenRes.status, 200, tokenRes.text);
      const token = tokenRes.body.parameter.find((p) => p.name === 'token').valueString;
      assert.ok(token.length > 40);
      // a search keeps its query in the log; a token= parameter elsewhere does not
      assert.equal((await httpsJson(ctx, 'GET', 'Subscription?status=active', undefined, auth)).status, 200);
      assert.equal((await httpsJson(ctx, 'GET', 'metadata?token=not-a-token-xyz', undefined, auth)).status, 200);

      const client = await connectWs(`${ctx.wss}?token=${encodeURIComponent(token)}`, { ca: ctx.ca });
      const handshake = await client.next();
      assert.equal(handshake.resourceType, 'Bundle');
      assert.match(JSON.stringify(handshake), /handshake/);
      await client.close();

      // the websocket request is logged when its connection ends
      await waitFor(() => /"GET \/ws\/subscriptions-r4 HTTP\/1\.1" 101 /.test(fs.readFileSync(ctx.accessLog, 'utf8')), { what: `websocket line in ${ctx.accessLog}` });
      const access = fs.readFileSync(ctx.accessLog, 'utf8');
      assert.match(access, /"GET \/fhir\/R4\/Subscription\?status=active HTTP\/1\.1" 200 /, access);
      assert.match(access, /"GET \/fhir\/R4\/metadata HTTP\/1\.1" 200 /, access);
      for (const [name, text] of [['access log', access], ['error log', fs.readFileSync(ctx.errorLog, 'utf8')], ['httpd error log', site.httpd.errorLog()], ['notifier log', notifier.log()]]) {
        assert.ok(!text.includes(token), `${name} holds the token`);
        assert.ok(!text.includes(token.split('.')[2]), `${name} holds the token's signature`);
        assert.ok(!text.includes('not-a-token-xyz'), `${name} holds a token= value`);
      }
      assert.match(notifier.log(), /FS20205: .*binding token in the URL/);
      assert.deepEqual(notifierProblems(notifier.log()), []);
    });
  });
});

/**
 * The example site running: the installed files with this test's paths and ports, over TLS
 * on a free port, in front of the FHIR backend. Resolves to
 * {httpd, etc, state, ports, ctx: {base, wss, ca, accessLog, errorLog}, stop()}.
 */
async function startSite({ oauthSecret } = {}) {
  const dir = fs.mkdtempSync(path.join(tmp, 'site-'));
  fs.chmodSync(dir, 0o755);
  const etc = makeEtc();
  const cert = makeCert(dir);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const backend = await startBackend({ basePath: '/fhir/R4' });
  const ports = { https: await freePort(), fhir: backend.port, notifier: await freePort(), wake: await freePort() };
  const httpdDir = path.join(dir, 'httpd');
  const state = path.join(httpdDir, 'db'); // startHttpd gives it to www-data
  let httpd;
  try {
    httpd = await startHttpd({
      dir: httpdDir,
      module: false, // fhirsub.load loads the installed one
      serverDirectives: [
        `LoadModule ssl_module ${MODULES_DIR}/mod_ssl.so`,
        ...(oauthSecret ? [`LoadModule auth_openidc_module ${MODULES_DIR}/${OPENIDC}`, 'Define FHIRSUB_OAUTH'] : []),
        `Listen 127.0.0.1:${ports.https} https`,
        ...siteIncludes(dir, { etc, state, cert, ports, logDir, oauthSecret }),
      ],
    });
  } catch (err) {
    await backend.stop();
    throw err;
  }
  const ctx = {
    base: `https://127.0.0.1:${ports.https}/fhir/R4`,
    wss: `wss://127.0.0.1:${ports.https}/ws/subscriptions-r4`,
    ca: cert.pem,
    accessLog: path.join(logDir, 'fhirsub_access.log'),
    errorLog: path.join(logDir, 'fhirsub_error.log'),
  };
  return {
    httpd,
    etc,
    state,
    ports,
    ctx,
    async stop() {
      await httpd.stop();
      await backend.stop();
    },
  };
}

describe('the example site with OAuth bearer tokens (mod_auth_openidc)', () => {
  let site;
  let secret;

  before(async function () {
    if (!fs.existsSync(path.join(MODULES_DIR, OPENIDC))) return;
    secret = randomSecret(32);
    site = await startSite({ oauthSecret: secret });
  });

  after(async () => {
    await site?.stop();
  });

  test('the token\'s sub owns the subscriptions; a bad token gets 401', async (t) => {
    if (!site) return t.skip('libapache2-mod-auth-openidc is not installed (scripts/test installs it)');
    const keyFile = path.join(tmp, 'oauth.key');
    fs.writeFileSync(keyFile, secret);
    const now = Math.floor(Date.now() / 1000);
    const bearer = (claims) => ({ Authorization: `Bearer ${mintToken(keyFile, { iat: now, exp: now + 300, ...claims })}` });
    const created = await httpsJson(site.ctx, 'POST', 'Subscription', classicBody(), bearer({ sub: 'dr-house' }));
    assert.equal(created.status, 201, created.text);
    // the owner is the claim: another user does not see it, the same one does
    const mine = await httpsJson(site.ctx, 'GET', `Subscription/${created.body.id}`, undefined, bearer({ sub: 'dr-house' }));
    assert.equal(mine.status, 200, mine.text);
    const other = await httpsJson(site.ctx, 'GET', `Subscription/${created.body.id}`, undefined, bearer({ sub: 'dr-wilson' }));
    assert.equal(other.status, 404, other.text);
    // refused by mod_auth_openidc, answered as an OperationOutcome by mod_fhirsub
    const forged = await httpsJson(site.ctx, 'GET', 'Subscription', undefined, { Authorization: `Bearer ${mintToken(keyFile, { sub: 'dr-house', iat: now, exp: now + 300 }).slice(0, -4)}AAAA` });
    assert.equal(forged.status, 401, forged.text);
    assert.equal(forged.body?.resourceType, 'OperationOutcome', forged.text);
    const expired = await httpsJson(site.ctx, 'GET', 'Subscription', undefined, bearer({ sub: 'dr-house', iat: now - 600, exp: now - 300 }));
    assert.equal(expired.status, 401, expired.text);
    const none = await httpsJson(site.ctx, 'GET', 'Subscription');
    assert.equal(none.status, 401, none.text);
  });
});

describe('make uninstall DESTDIR', () => {
  test('removes every installed file but a configuration the admin changed', async () => {
    const conf = inDest(path.join(dirs.fhirsubconfdir, 'fhirsub-notifier.conf'));
    fs.appendFileSync(conf, 'LogLevel info\n');
    const { stdout } = await run('make', ['-C', REPO_ROOT, 'uninstall', `DESTDIR=${dest}`], { timeoutMs: INSTALL_TIMEOUT_MS });
    assert.match(stdout, /kept .*fhirsub-notifier\.conf \(changed locally\)/);
    const files = [];
    const walk = (dir) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(dest);
    assert.deepEqual(files, [conf]);
  });
});

/** A FHIR JSON request over https trusting the test certificate. */
function httpsJson(ctx, method, relPath, body, headers = {}) {
  const url = new URL(`${ctx.base}/${relPath}`);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method,
      ca: ctx.ca,
      timeout: DEFAULT_TIMEOUT_MS,
      headers: { Accept: 'application/fhir+json', ...(data ? { 'Content-Type': 'application/fhir+json' } : {}), ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let parsed = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode, body: parsed, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}
