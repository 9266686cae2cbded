// SPDX-License-Identifier: MIT
// The three examples of the product documentation, as written (the scripts
// adapted to the busybox test image: it has no npm or node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Mags } from '@magpiecloud/mags';
import { needsMagsd, isRoot, tempDir, until, proxyGet } from './_helpers.mjs';

test('basic execution: run waits and fills job.logs', { ...needsMagsd, timeout: 120000 }, async () => {
  const mags = new Mags();
  const job = await mags.run('echo hello');
  assert.equal(job.logs, 'hello\n');
  assert.equal(job.status, 'completed');
  assert.equal(job.exitCode, 0);
  assert.match(job.id, /^[0-9a-f-]{36}$/);
  assert.ok(job.createdAt && job.startedAt && job.finishedAt, JSON.stringify(job));
});

test('persistent workspace with files (and a public URL as root)', { ...needsMagsd, timeout: 180000 }, async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "myapp", "scripts": {"start": "node index.js"}}\n');
  fs.writeFileSync(path.join(dir, 'index.js'), 'console.log("index-js-content");\n');
  const cwd = process.cwd();
  process.chdir(dir); // the example names the files relative to the working directory
  const mags = new Mags();
  let app;
  try {
    // As root (tap networking) the guest's port is reachable: serve the files.
    // Otherwise the same job without the URL, printing them.
    app = await mags.run({
      script: isRoot ? 'cat package.json index.js; exec httpd -f -p 8080' : 'cat package.json index.js',
      workspace: 'myapp',
      persist: true,
      ...(isRoot ? { url: true } : {}),
      files: ['package.json', 'index.js'],
    });
  } finally {
    process.chdir(cwd);
  }
  try {
    assert.equal(app.workspace, 'myapp');
    const out = await until('the files in the output', async () => {
      const l = await mags.logs(app.id);
      return l.includes('index-js-content') && l.includes('"scripts"') ? l : null;
    });
    assert.ok(out.startsWith('{"name": "myapp"'), out);
    if (isRoot) {
      // a url job resolves once it runs, with its URL
      assert.equal(app.status, 'running');
      assert.match(app.url, /^http:\/\/myapp\.localhost:\d+$/);
      const r = await until('the page through the URL', async () => {
        const res = await proxyGet(app.url, '/index.js');
        return res.status === 502 ? null : res;
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'console.log("index-js-content");\n');
    } else {
      assert.equal(app.status, 'completed', app.logs);
      assert.equal(app.logs, out);
    }
  } finally {
    if (isRoot) {
      const stopped = await mags.stop(app.id);
      assert.equal(stopped.status, 'failed');
      assert.equal(stopped.error, 'stopped');
    }
  }
});

test('job lifecycle: alwaysOn job, status, logs, stop', { ...needsMagsd, timeout: 180000 }, async () => {
  const mags = new Mags();
  // Start a long-running job
  const job = await mags.run({
    script: 'echo worker started; exec sleep 3600',
    workspace: 'background-worker',
    persist: true,
    alwaysOn: true,
  });
  // Check status
  const status = await mags.status(job.id);
  assert.equal(status, 'running');
  assert.equal(job.alwaysOn, true);
  // Stream logs
  const logs = await until('the worker output', async () => {
    const l = await mags.logs(job.id);
    return l.includes('worker started') ? l : null;
  });
  assert.equal(typeof logs, 'string');
  // Stop when done
  const stopped = await mags.stop(job.id);
  assert.equal(stopped.id, job.id);
  assert.equal(stopped.status, 'failed');
  assert.equal(await mags.status(job.id), 'failed');
});
