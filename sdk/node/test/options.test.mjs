// SPDX-License-Identifier: MIT
// How run and cron options become API fields, and how a Job reads the API's
// object: checked with a stand-in for fetch, so no magsd is needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mags, BadRequestError } from '@magpiecloud/mags';

const JOB_ID = '11111111-2222-4333-8444-555555555555';

/* Replaces global fetch while fn runs; returns the requests it saw ({ method, url, body }). */
async function withFakeFetch(reply, fn) {
  const seen = [];
  const saved = globalThis.fetch;
  globalThis.fetch = async (url, init = {}) => {
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : undefined;
    seen.push({ method: init.method, url: String(url), body });
    const [status, obj] = reply(init.method, String(url), body);
    return new Response(JSON.stringify(obj), { status, headers: { 'content-type': 'application/json' } });
  };
  try {
    await fn();
  } finally {
    globalThis.fetch = saved;
  }
  return seen;
}

/* A magsd that takes every submit, resolving image like the API does. */
function fakeMagsd(method, url, body) {
  if (method === 'POST' && url.endsWith('/api/v1/mags-jobs')) {
    if (body.image !== undefined && body.image !== null && !['debian', 'busybox'].includes(body.image)) {
      return [400, { error: `"image": no image "${body.image}" here (images: busybox, debian)`, code: 400 }];
    }
    return [201, { id: JOB_ID, status: 'queued', script: body.script, workspace: null, image: body.image ?? 'debian' }];
  }
  if (method === 'GET' && url.endsWith(`/mags-jobs/${JOB_ID}`)) {
    return [200, { id: JOB_ID, status: 'completed', exit_code: 0, workspace: null, image: 'busybox' }];
  }
  if (url.includes('/cron-jobs')) {
    return [method === 'POST' ? 201 : 200, { id: 'cron-00000000000000000001', options: body }];
  }
  return [404, { error: 'not found', code: 404 }];
}

const client = () => new Mags({ token: 't', apiUrl: 'http://127.0.0.1:9' });

test('image: sent as the API field "image", and read back as job.image', async () => {
  const mags = client();
  let job;
  let plain;
  const seen = await withFakeFetch(fakeMagsd, async () => {
    job = await mags.run({ script: 'uname -a', image: 'busybox', ephemeral: true, wait: false });
    plain = await mags.run({ script: 'true', image: null, wait: false });
  });
  assert.deepEqual(seen[0].body, { script: 'uname -a', image: 'busybox', ephemeral: true });
  assert.ok(!('image' in seen[1].body), JSON.stringify(seen[1].body)); // null: magsd's default
  assert.equal(job.image, 'busybox');
  assert.equal(job.raw.image, 'busybox');
  assert.equal(plain.image, 'debian');
  assert.equal(JSON.parse(JSON.stringify(job)).image, 'busybox');
  await withFakeFetch(fakeMagsd, async () => {
    assert.equal((await mags.get(JOB_ID)).image, 'busybox');
    await job.refresh();
  });
  assert.equal(job.image, 'busybox');
  assert.equal(job.status, 'completed');
});

test('image: a job object without the field reads as null', async () => {
  const mags = client();
  await withFakeFetch(() => [200, { id: JOB_ID, status: 'running' }], async () => {
    assert.equal((await mags.get(JOB_ID)).image, null);
  });
});

test('image: checked before anything is sent; magsd\'s 400 is a BadRequestError', async () => {
  const mags = client();
  const seen = await withFakeFetch(fakeMagsd, async () => {
    await assert.rejects(mags.run({ script: 'true', image: 7 }), (e) => e instanceof TypeError && /image/.test(e.message));
    await assert.rejects(mags.run({ script: 'true', image: true }), TypeError);
    await assert.rejects(mags.cron.create({ expression: '@daily', script: 'true', image: ['debian'] }), TypeError);
    await assert.rejects(mags.run({ script: 'true', image: 'plan9', wait: false }), (e) => {
      assert.ok(e instanceof BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.match(e.message, /image/);
      assert.match(e.message, /busybox/);
      return true;
    });
  });
  assert.equal(seen.length, 1, 'only the valid-typed submit reached magsd');
});

test('image: cron schedules take it; in update null removes it', async () => {
  const mags = client();
  const seen = await withFakeFetch(fakeMagsd, async () => {
    await mags.cron.create({ expression: '0 3 * * *', script: 'date', image: 'busybox', timeout: 60 });
    await mags.cron.update('cron-00000000000000000001', { image: null });
    await mags.cron.update('cron-00000000000000000001', { image: 'debian' });
  });
  assert.deepEqual(seen[0].body, { expression: '0 3 * * *', script: 'date', image: 'busybox', timeout: 60 });
  assert.equal(seen[0].method, 'POST');
  assert.deepEqual(seen[1].body, { image: null });
  assert.equal(seen[1].method, 'PATCH');
  assert.deepEqual(seen[2].body, { image: 'debian' });
});

test('the other run options keep their API names', async () => {
  const mags = client();
  const seen = await withFakeFetch(fakeMagsd, async () => {
    await mags.run({
      script: 's', workspace: 'w', persist: true, startupCommand: 'st', idleTimeout: 5, alwaysOn: true,
      timeout: 9, baseImage: 'base', image: 'debian', sshPublicKey: 'k', ssh: false, url: false, port: 81, wait: false,
    });
  });
  assert.deepEqual(seen[0].body, {
    script: 's', workspace: 'w', persist: true, startup_command: 'st', idle_timeout: 5, always_on: true,
    timeout: 9, from: 'base', image: 'debian', ssh_public_key: 'k', ssh: false, url: false, port: 81,
  });
});
