// SPDX-License-Identifier: MIT
// Shared by the tests: they run against a real magsd named by MAGS_API_URL and
// MAGS_TOKEN (tests/integration/test_sdk_node.py starts one); without them
// every test that needs magsd is skipped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';

export const API_URL = process.env.MAGS_API_URL || '';
export const TOKEN = process.env.MAGS_TOKEN || '';
/** Pass as the options of a test: skipped without a magsd to talk to. */
export const needsMagsd = API_URL && TOKEN ? {} : { skip: 'MAGS_API_URL and MAGS_TOKEN are not set (no magsd)' };
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** A fresh directory under the system's temp dir, removed at exit. */
export function tempDir(prefix = 'mags-node-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns something truthy; fails after `seconds`. */
export async function until(what, fn, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** GET through magsd's URL proxy: connects to the URL's port on 127.0.0.1 with its Host. */
export function proxyGet(url, pathname = '/') {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: u.port || 80, path: pathname, method: 'GET',
      headers: { host: u.host, connection: 'close' }, timeout: 30000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('proxy request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs fn with environment variables changed, then restores them. */
export async function withEnv(vars, fn) {
  const saved = {};
  for (const k of Object.keys(vars)) {
    saved[k] = process.env[k];
    if (vars[k] === undefined) delete process.env[k];
    else process.env[k] = vars[k];
  }
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(saved)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}
