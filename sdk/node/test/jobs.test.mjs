// SPDX-License-Identifier: MIT
// Running, waiting, output, uploads and workspaces against a real magsd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Mags, Job, MagsTimeoutError, NotFoundError } from '@magpiecloud/mags';
import { needsMagsd, tempDir } from './_helpers.mjs';

test('runAndWait: an uploaded script file, its exit code and both streams', { ...needsMagsd, timeout: 120000 }, async () => {
  const dir = tempDir();
  const script = path.join(dir, 'fail.sh');
  fs.writeFileSync(script, '#!/bin/sh\necho "out:$(cat data.txt)"\necho err-line >&2\nexit 3\n', { mode: 0o755 });
  fs.chmodSync(script, 0o755);
  const sub = fs.mkdtempSync(path.join(dir, 'sub-'));
  fs.writeFileSync(path.join(sub, 'data.txt'), 'payload-42');
  const mags = new Mags();
  const job = await mags.runAndWait({ script: './fail.sh', files: [script, path.join(sub, 'data.txt')], ephemeral: true });
  assert.ok(job instanceof Job);
  assert.equal(job.status, 'failed');
  assert.equal(job.exitCode, 3);
  assert.ok(job.logs.includes('out:payload-42\n'), job.logs);
  assert.ok(job.logs.includes('err-line\n'), job.logs);
  assert.equal(await mags.logs(job.id), job.logs);
  const entries = await mags.logEntries(job.id);
  assert.ok(entries.some((e) => e.stream === 'stderr' && e.data === 'err-line\n'), JSON.stringify(entries));
});

test('runAndWait timeout rejects, the job goes on; a job timeout is exit code 124', { ...needsMagsd, timeout: 120000 }, async () => {
  const mags = new Mags();
  let err;
  try {
    await mags.runAndWait({ script: 'echo started; sleep 60', timeout: 2, ephemeral: true }, { timeout: 0.3 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof MagsTimeoutError, String(err));
  assert.match(err.jobId, /^[0-9a-f-]{36}$/);
  const job = await err.job.wait({ timeout: 90 });
  assert.equal(job.status, 'failed');
  assert.equal(job.exitCode, 124);
  assert.ok(job.logs.includes('started\n'), job.logs);
});

test('wait:false, streamLogs, status/get/list, refresh and workspaces', { ...needsMagsd, timeout: 120000 }, async () => {
  const mags = new Mags();
  const job = await mags.run({
    script: 'for i in 1 2 3; do echo line$i; sleep 0.3; done; echo oops >&2',
    workspace: 'sdk-ws',
    wait: false,
  });
  assert.ok(['queued', 'running'].includes(job.status), job.status);
  assert.equal(job.logs, '');
  assert.ok(['queued', 'running', 'completed'].includes(await mags.status(job.id)));

  const seen = [];
  const it = mags.streamLogs(job.id);
  for await (const e of it) seen.push(e);
  const out = seen.filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
  assert.equal(out, 'line1\nline2\nline3\n');
  assert.ok(seen.some((e) => e.stream === 'stderr' && e.data === 'oops\n'));
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].seq > seen[i - 1].seq);

  // the stream ended with the job; following again from an entry resumes after it
  const second = seen.find((e) => e.data === 'line2\n');
  const rest = [];
  for await (const e of mags.streamLogs(job.id, { since: second.seq })) rest.push(e.data);
  assert.ok(rest.includes('line3\n') && !rest.includes('line2\n'), JSON.stringify(rest));

  assert.equal(await mags.status(job.id), 'completed');
  const got = await mags.get(job.id);
  assert.equal(got.id, job.id);
  assert.equal(got.exitCode, 0);
  assert.equal(got.workspace, 'sdk-ws');
  assert.equal(got.raw.id, job.id);
  assert.equal(got.logs, '');
  await got.refresh({ logs: true });
  assert.equal(got.logs, 'line1\nline2\nline3\noops\n');

  const all = await mags.list();
  assert.ok(all.every((j) => j instanceof Job));
  assert.ok(all.some((j) => j.id === job.id && j.status === 'completed'));
  const mine = await mags.list({ workspace: 'sdk-ws' });
  assert.deepEqual(mine.map((j) => j.id), [job.id]);

  const names = (await mags.workspace.list()).map((w) => w.name);
  assert.ok(names.includes('sdk-ws'), JSON.stringify(names));
  assert.deepEqual(await mags.workspace.delete('sdk-ws'), { deleted: 'sdk-ws' });
  assert.ok(!(await mags.workspace.list()).some((w) => w.name === 'sdk-ws'));
  await assert.rejects(mags.workspace.delete('sdk-ws'), NotFoundError);
});
