// SPDX-License-Identifier: MIT
// The CommonJS entry point: the same API through require().
const { test } = require('node:test');
const assert = require('node:assert/strict');
const mags = require('@magpiecloud/mags');

const needsMagsd = process.env.MAGS_API_URL && process.env.MAGS_TOKEN ? {} : { skip: 'no magsd (MAGS_API_URL, MAGS_TOKEN)' };

test('require exports the client and the errors', () => {
  for (const k of ['Mags', 'Job', 'MagsError', 'BadRequestError', 'AuthenticationError', 'NotFoundError',
    'ConflictError', 'ServerError', 'MagsConnectionError', 'MagsTimeoutError']) {
    assert.equal(typeof mags[k], 'function', k);
  }
  assert.ok(new mags.NotFoundError('x', { status: 404 }) instanceof mags.MagsError);
});

test('require: the same objects as import', async () => {
  const esm = await import('@magpiecloud/mags');
  assert.equal(esm.Mags, mags.Mags);
  assert.equal(esm.NotFoundError, mags.NotFoundError);
});

test('require: talks to magsd', needsMagsd, async () => {
  const client = new mags.Mags();
  assert.ok(Array.isArray(await client.list({ limit: 5 })));
  await assert.rejects(client.get('00000000-0000-4000-8000-000000000000'), mags.NotFoundError);
});
