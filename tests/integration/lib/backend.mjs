// Starts backend/server.mjs (Medplum FhirRouter + MemoryRepository) as a child process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_TIMEOUT_MS,
  isProcessAlive,
  makeTempDir,
  onProcessExit,
  readFileOr,
  removeDir,
  signalProcess,
  sleepSync,
  waitFor,
} from './util.mjs';

const SERVER_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../backend/server.mjs');
const READY_LINE = /^FHIR backend listening on (http:\/\/127\.0\.0\.1:(\d+)(\/\S*))$/m;

// @medplum/core 5.x needs a global WebSocket at import time; Node 20 only has it behind a flag.
function nodeFlags() {
  return typeof globalThis.WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
}

function spawnServer(basePath, logFile) {
  const out = fs.openSync(logFile, 'a');
  try {
    const args = [...nodeFlags(), SERVER_SCRIPT, '--port', '0', '--base', basePath];
    const child = spawn(process.execPath, args, { stdio: ['ignore', out, out] });
    child.unref(); // exit hooks stop it if a test forgets to
    return child;
  } finally {
    fs.closeSync(out);
  }
}

async function waitForReady(child, logFile, timeoutMs) {
  try {
    return await waitFor(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('backend exited');
      return READY_LINE.exec(readFileOr(logFile));
    }, { what: 'the FHIR backend ready line', timeoutMs });
  } catch (err) {
    throw new Error(`FHIR backend did not start (${err.message}):\n${readFileOr(logFile)}`);
  }
}

async function stopChild(child) {
  signalProcess(child.pid, 'SIGTERM');
  try {
    await waitFor(() => !isProcessAlive(child.pid), { what: 'FHIR backend exit', timeoutMs: 5000 });
  } catch {
    signalProcess(child.pid, 'SIGKILL');
    await waitFor(() => !isProcessAlive(child.pid), { what: 'FHIR backend kill', timeoutMs: 5000 });
  }
}

// For exit handlers: kill and wait (bounded) until the socket is surely released.
function killSync(pid) {
  signalProcess(pid, 'SIGKILL');
  for (let i = 0; i < 40 && isProcessAlive(pid); i++) sleepSync(50);
}

/**
 * @param {{basePath?: string, dir?: string, timeoutMs?: number}} [opts]
 * @returns {Promise<{port:number, url:string, basePath:string, log():string, stop():Promise<void>}>}
 *   url is the FHIR base, e.g. http://127.0.0.1:PORT/fhir/R4
 */
export async function startBackend({ basePath = '/fhir/R4', dir, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const ownDir = dir ?? makeTempDir('fhirsub-backend-');
  const logFile = path.join(ownDir, 'backend.log');
  const child = spawnServer(basePath, logFile);
  const unregister = onProcessExit(() => killSync(child.pid));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopChild(child);
    unregister();
    if (!dir) removeDir(ownDir);
  };
  try {
    const [, url, port, base] = await waitForReady(child, logFile, timeoutMs);
    return { port: Number(port), url, basePath: base, log: () => readFileOr(logFile), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
