// SPDX-License-Identifier: MIT
// An always-on job: run resolves once it runs; update({ alwaysOn: false }) ends it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mags } from '@magpiecloud/mags';
import { needsMagsd, until } from './_helpers.mjs';

test('alwaysOn: run returns once running, update switches it off and it ends', { ...needsMagsd, timeout: 120000 }, async () => {
  const mags = new Mags();
  const job = await mags.run({ script: 'echo once', alwaysOn: true, idleTimeout: 0 });
  try {
    assert.equal(job.status, 'running');
    assert.equal(job.alwaysOn, true);
    assert.equal(job.raw.idle_timeout, 0);
    // the command exits 0 and the sandbox stays up (a system line says so)
    await until('the "stays up" line', async () =>
      (await mags.logEntries(job.id)).some((e) => e.stream === 'system' && /stays up/.test(e.data)));
    assert.equal(await mags.status(job.id), 'running');
    const updated = await mags.update(job.id, { alwaysOn: false });
    assert.equal(updated.alwaysOn, false);
    assert.equal(updated.raw.always_on, false);
    await job.wait({ timeout: 90 });
    assert.equal(job.status, 'completed', JSON.stringify(job.raw));
    assert.equal(job.exitCode, 0);
    assert.ok(job.logs.includes('once\n'), job.logs);
  } finally {
    if (!job.done) await mags.stop(job.id).catch(() => {});
  }
});
