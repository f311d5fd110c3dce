// Small shared helpers: bounded polling, running commands, temp dirs, exit-time cleanup.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_TIMEOUT_MS = 20_000;
export const isRoot = () => process.getuid?.() === 0;
export const keepTempDirs = () => process.env.FHIRSUB_KEEP === '1';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls check() until it returns a truthy value; fails with `what` in the message after timeoutMs.
// An error thrown by check() ends the wait at once (e.g. "the server exited").
export async function waitFor(check, { what = 'condition', timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// Resolves like promise, or rejects after timeoutMs (and then stops waiting: no dangling timer).
export async function withTimeout(promise, timeoutMs, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Runs a command to completion; resolves to {code, stdout, stderr} whatever its exit status
// (code is "signal NAME" when it was killed, also after timeoutMs).
export function capture(cmd, args, { timeoutMs = DEFAULT_TIMEOUT_MS, input, env } = {}) {
  return new Promise((resolve, reject) => {
    const stdin = input === undefined ? 'ignore' : 'pipe';
    const child = spawn(cmd, args, { stdio: [stdin, 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ? `signal ${signal}` : code, stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE if it exits unread; its exit status tells the story
      child.stdin.end(input);
    }
  });
}

// Runs a command to completion; rejects with its output on a non-zero exit or after timeoutMs.
export async function run(cmd, args, opts = {}) {
  const { code, stdout, stderr } = await capture(cmd, args, opts);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${typeof code === 'number' ? `exit ${code}` : code}):\n${stderr}${stdout}`);
  return { stdout, stderr };
}

// Synchronous variant for exit handlers, where nothing asynchronous runs any more.
export function runSync(cmd, args, { timeoutMs = 10_000 } = {}) {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: timeoutMs });
}

// A fresh directory that other users (www-data, postgres) can traverse. It is removed at process
// exit too (after the services in it are stopped: exit handlers run last-registered first).
export function makeTempDir(prefix = 'fhirsub-it-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  onProcessExit(() => removeDir(dir));
  return dir;
}

export function ensureDir(dir, mode = 0o755) {
  fs.mkdirSync(dir, { recursive: true, mode });
  fs.chmodSync(dir, mode);
  return dir;
}

export function removeDir(dir) {
  if (dir && !keepTempDirs()) fs.rmSync(dir, { recursive: true, force: true });
}

export function readFileOr(file, fallback = '') {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

export function tail(text, lines = 30) {
  return text.split('\n').slice(-lines).join('\n');
}

function threadState(statPath) {
  const stat = readFileOr(statPath, null);
  return stat === null ? 'X' : stat.charAt(stat.lastIndexOf(')') + 2);
}

// True while any thread of the process runs. A zombie (not yet reaped) counts as gone, but only
// once all its threads are: the main thread turns Z first while the others still hold its sockets.
export function isProcessAlive(pid) {
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((tid) => !['Z', 'X'].includes(threadState(`/proc/${pid}/task/${tid}/stat`)));
}

export function signalProcess(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

// Blocks the thread; only for exit handlers, which cannot await.
export function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// --- exit-time cleanup -------------------------------------------------------------------
// Every started service registers a synchronous stopper, so an aborted or crashed test run
// still leaves no httpd, backend or PostgreSQL cluster behind.
const exitHandlers = new Set();
let exitHooksInstalled = false;

function runExitHandlers() {
  for (const handler of [...exitHandlers].reverse()) {
    exitHandlers.delete(handler);
    try {
      handler();
    } catch {
      // keep going: the remaining services still need stopping
    }
  }
}

function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', runExitHandlers);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.on(signal, () => {
      runExitHandlers();
      process.exit(code);
    });
  }
}

// Registers handler; returns a function that unregisters it (call it after a clean stop).
export function onProcessExit(handler) {
  installExitHooks();
  exitHandlers.add(handler);
  return () => exitHandlers.delete(handler);
}
