// scripts/demo driven from the tests: start it detached or in the foreground on free ports in
// a fresh directory, stop it, and find every process of it that is left (by command line,
// not by its own pid files, so a broken stop cannot hide one).
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './fhirsub.mjs';
import { freePorts, isPortOpen } from './ports.mjs';
import { capture, makeTempDir, onProcessExit, readFileOr, runSync, signalProcess, waitFor, withTimeout } from './util.mjs';

export const DEMO = path.join(REPO_ROOT, 'scripts/demo');
// Install and build steps run first: quick when all is there, the first time not.
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 60_000;

/** Fresh ports and directory for one demo: {dir, http, ws, wake, backend, args}. */
export async function demoSetup() {
  const [http, ws, wake, backend] = await freePorts(4);
  const dir = makeTempDir('fhirsub-demo-');
  const args = ['--http-port', http, '--ws-port', ws, '--wake-port', wake, '--backend-port', backend, '--dir', dir]
    .map(String);
  const setup = { dir, http, ws, wake, backend, args };
  // An aborted run must not leave the demo behind either, even when --stop is what broke.
  setup.unregister = onProcessExit(() => {
    runSync(DEMO, ['--stop', '--dir', dir], { timeoutMs: 30_000 });
    killLeftovers(setup);
  });
  return setup;
}

/** SIGKILL to whatever of this demo is still there (the tests' safety net after --stop). */
export function killLeftovers(setup) {
  for (const { pid } of demoProcesses(setup)) signalProcess(pid, 'SIGKILL');
}

/** The URLs the demo printed, or null for what it did not print. */
export function demoUrls(stdout) {
  const find = (re) => stdout.match(re)?.[1] ?? null;
  return {
    fhirBase: find(/FHIR base\s+(\S+)/),
    wsUrl: find(/websocket URL\s+(\S+)/),
    console: find(/console\s+(http\S+)/),
  };
}

/** scripts/demo --detach; resolves to {code, stdout, stderr}. */
export function startDetached(setup) {
  return capture(DEMO, ['--detach', ...setup.args], { timeoutMs: START_TIMEOUT_MS });
}

export function stopDemo(setup) {
  return capture(DEMO, ['--stop', '--dir', setup.dir], { timeoutMs: STOP_TIMEOUT_MS });
}

/**
 * scripts/demo in the foreground, in its own process group (as a terminal runs it, so Ctrl-C
 * reaches the whole group). Resolves once it says it runs: {child, output(), exited, interrupt()}.
 */
export async function startForeground(setup) {
  const child = spawn(DEMO, setup.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  // 'close', not 'exit': only then has all it wrote been read (its last line comes last).
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let gone = null;
  exited.then((e) => (gone = e));
  await waitFor(() => {
    if (gone) throw new Error(`scripts/demo exited (${JSON.stringify(gone)}) before it ran:\n${out}`);
    return out.includes('Ctrl-C stops everything');
  }, { what: 'scripts/demo to run', timeoutMs: START_TIMEOUT_MS, intervalMs: 200 });
  return {
    child,
    output: () => out,
    exited: (timeoutMs) => withTimeout(exited, timeoutMs, 'scripts/demo to exit'),
    interrupt: () => process.kill(-child.pid, 'SIGINT'),
  };
}

function cmdlines() {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const cmd = readFileOr(`/proc/${pid}/cmdline`, '').split('\0').join(' ').trim();
    if (cmd) out.push({ pid: Number(pid), cmd });
  }
  return out;
}

/** Processes of this demo still there: httpd (parent and children), backend, notifier. */
export function demoProcesses(setup) {
  return cmdlines().filter(({ cmd }) =>
    cmd.includes(`${setup.dir}/httpd.conf`)
    || cmd.includes(`${setup.dir}/fhirsub-notifier`)
    || (cmd.includes('backend/server.mjs') && cmd.includes(`--port ${setup.backend}`)));
}

function udpPortFree(port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => (socket.close(), resolve(false)));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** The demo's ports that are still taken (TCP listeners, the UDP wake-up socket). */
export async function takenPorts(setup) {
  const taken = [];
  for (const name of ['http', 'ws', 'backend']) {
    if (await isPortOpen(setup[name])) taken.push(`${name} ${setup[name]}/tcp`);
  }
  if (!(await udpPortFree(setup.wake))) taken.push(`wake ${setup.wake}/udp`);
  return taken;
}
