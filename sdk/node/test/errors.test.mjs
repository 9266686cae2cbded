// SPDX-License-Identifier: MIT
// Errors, option checks and where the token and URL come from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  Mags, MagsError, BadRequestError, AuthenticationError, NotFoundError, ConflictError,
  MagsConnectionError,
} from '@magpiecloud/mags';
import { needsMagsd, API_URL, TOKEN, tempDir, withEnv } from './_helpers.mjs';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

test('bad options are a TypeError before any request', async () => {
  // port 9 (discard) would fail with MagsConnectionError if anything were sent
  const mags = new Mags({ token: 'x', apiUrl: 'http://127.0.0.1:9' });
  await assert.rejects(mags.run({ script: 'true', colour: 'blue' }), (e) => e instanceof TypeError && /colour/.test(e.message));
  await assert.rejects(mags.run({ script: 'true', persist: 'yes' }), TypeError);
  await assert.rejects(mags.run({ script: 'true', timeout: 1.5 }), TypeError);
  await assert.rejects(mags.run({ script: 'true', image: 8 }), (e) => e instanceof TypeError && /image/.test(e.message));
  await assert.rejects(mags.run({ workspace: 'w' }), TypeError);
  await assert.rejects(mags.run(''), TypeError);
  await assert.rejects(mags.run({ script: 'true', files: ['a/x.txt', 'b/x.txt'] }),
    (e) => e instanceof TypeError && /x\.txt/.test(e.message));
  await assert.rejects(mags.update(UNKNOWN, { always_on: true }), TypeError);
  await assert.rejects(mags.runAndWait('true', { timout: 3 }), TypeError);
  await assert.rejects(mags.status(UNKNOWN), MagsConnectionError);
  assert.throws(() => new Mags({ token: 'x', apiUrl: 'http://h', tokne: 1 }), TypeError);
});

test('API errors map to error classes', { ...needsMagsd, timeout: 120000 }, async () => {
  const mags = new Mags();
  await assert.rejects(mags.run({ script: 'true', workspace: 'bad name!' }), (e) => {
    assert.ok(e instanceof BadRequestError && e instanceof MagsError, String(e));
    assert.equal(e.status, 400);
    assert.match(e.message, /workspace/);
    assert.equal(e.body.code, 400);
    return true;
  });
  await assert.rejects(mags.status(UNKNOWN), (e) => e instanceof NotFoundError && e.status === 404);
  await assert.rejects(mags.logs(UNKNOWN), NotFoundError);
  await assert.rejects(mags.stop(UNKNOWN), NotFoundError);
  await assert.rejects(mags.cron.get('cron-00000000000000000000'), NotFoundError);
  const wrong = new Mags({ token: 'not-the-token' });
  await assert.rejects(wrong.list(), (e) => e instanceof AuthenticationError && e.status === 401);

  // stopping a job that has ended is a conflict
  const job = await mags.runAndWait({ script: 'exit 0', ephemeral: true });
  assert.equal(job.status, 'completed');
  await assert.rejects(mags.stop(job.id), (e) => e instanceof ConflictError && e.status === 409 && /completed/.test(e.message));
  await assert.rejects(job.stop(), ConflictError);
});

test('token and URL: options, environment, ~/.mags/config.json', { ...needsMagsd }, async () => {
  const home = tempDir('mags-home-');
  const clean = { HOME: home, MAGS_TOKEN: undefined, MAGS_API_TOKEN: undefined, MAGS_API_URL: undefined };
  await withEnv(clean, async () => {
    assert.throws(() => new Mags(), (e) => e instanceof AuthenticationError && /MAGS_TOKEN/.test(e.message));
    // options win, and a base URL may carry /api/v1
    const m = new Mags({ token: TOKEN, apiUrl: `${API_URL}/api/v1/` });
    assert.equal(m.apiUrl, API_URL);
    assert.ok(Array.isArray(await m.list()));
    // config.json as `mags login` writes it
    fs.mkdirSync(path.join(home, '.mags'), { mode: 0o700 });
    fs.writeFileSync(path.join(home, '.mags', 'config.json'),
      JSON.stringify({ api_url: `${API_URL}/api/v1`, token: TOKEN, local: true }), { mode: 0o600 });
    const fromFile = new Mags();
    assert.equal(fromFile.apiUrl, API_URL);
    assert.equal(fromFile.token, TOKEN);
    assert.ok(Array.isArray(await fromFile.workspace.list()));
    // the environment wins over the file
    await withEnv({ MAGS_API_TOKEN: 'env-token', MAGS_API_URL: 'http://127.0.0.1:9' }, async () => {
      const e = new Mags();
      assert.equal(e.token, 'env-token');
      assert.equal(e.apiUrl, 'http://127.0.0.1:9');
      await withEnv({ MAGS_TOKEN: 'first' }, async () => assert.equal(new Mags().token, 'first'));
    });
    fs.writeFileSync(path.join(home, '.mags', 'config.json'), '{"token": "t"}');
    assert.equal(new Mags().apiUrl, 'http://127.0.0.1:7557');
    fs.writeFileSync(path.join(home, '.mags', 'config.json'), 'not json');
    assert.throws(() => new Mags(), (e) => e instanceof MagsError && /config\.json/.test(e.message));
    assert.equal(new Mags({ token: 't', apiUrl: API_URL }).apiUrl, API_URL); // file not needed
  });
});
