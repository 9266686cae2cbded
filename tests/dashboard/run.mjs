// SPDX-License-Identifier: MIT
// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core walks every page against a running magsd and saves
// a screenshot of each. Run by tests/integration/test_dashboard.py, which
// prepares the data; by hand:
//
//   MAGS_URL=http://127.0.0.1:7557 MAGS_TOKEN=mags_... SHOTS_DIR=/tmp/shots \
//   MAGS_JOB_ID=... MAGS_JOB_TEXT=... MAGS_LIVE_JOB_ID=... MAGS_LIVE_TEXT=... \
//   MAGS_WORKSPACE=... PLAYWRIGHT_CORE=$(scripts/playwright.sh install)/playwright-core/index.mjs \
//   node tests/dashboard/run.mjs
//
// MAGS_JOB_ID: a finished job whose stdout holds MAGS_JOB_TEXT. MAGS_LIVE_JOB_ID
// (optional): a running job that has printed MAGS_LIVE_TEXT; the test stops it.
// MAGS_WORKSPACE: a workspace the test deletes. Exits 1 with the failing step.
import fs from 'node:fs';
import path from 'node:path';

const env = (k, def) => {
	const v = process.env[k] ?? def;
	if (v === undefined || v === '') {
		console.error(`run.mjs: set ${k}`);
		process.exit(2);
	}
	return v;
};
const BASE = env('MAGS_URL').replace(/\/$/, '');
const TOKEN = env('MAGS_TOKEN');
const SHOTS = env('SHOTS_DIR');
const JOB = env('MAGS_JOB_ID');
const JOB_TEXT = env('MAGS_JOB_TEXT');
const LIVE = process.env.MAGS_LIVE_JOB_ID || '';
const LIVE_TEXT = process.env.MAGS_LIVE_TEXT || '';
const WS = env('MAGS_WORKSPACE');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const { chromium } = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');

fs.mkdirSync(SHOTS, { recursive: true });

async function rest(method, p, body, token = TOKEN) {
	const headers = {};
	if (token)
		headers.Authorization = 'Bearer ' + token;
	if (body !== undefined)
		headers['Content-Type'] = 'application/json';
	const r = await fetch(BASE + '/api/v1' + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await r.text();
	let data = text;
	try {
		data = JSON.parse(text);
	} catch { /* not JSON */ }
	return { status: r.status, body: data };
}

function check(cond, msg) {
	if (!cond)
		throw new Error(msg);
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('console', (m) => {
	if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text()))
		problems.push('CSP: ' + m.text());
});
let dialogs = 0;
page.on('dialog', (d) => {
	dialogs++;
	d.accept();
});

const shot = (name) => page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: true });
const go = (hash) => page.goto(`${BASE}/dashboard/${hash}`);
let current = '';
async function step(name, fn) {
	current = name;
	const t0 = Date.now();
	await fn();
	if (problems.length)
		throw new Error(problems.join('; '));
	console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

try {
	await step('sign-in page, wrong token', async () => {
		await page.goto(BASE + '/'); // redirects to /dashboard/
		await page.waitForSelector('#signin-form');
		check(page.url().startsWith(BASE + '/dashboard/'), 'GET / did not lead to /dashboard/: ' + page.url());
		await shot('01-signin');
		await page.fill('#token', 'mags_' + '0'.repeat(40));
		await page.click('#signin-form button[type=submit]');
		const err = await page.waitForSelector('#signin-error .error');
		check(/not accepted/.test(await err.textContent()), 'wrong token: ' + await err.textContent());
		check(await page.evaluate(() => localStorage.getItem('mags.token')) === null, 'a wrong token was kept');
		await shot('02-signin-wrong-token');
	});

	await step('sign in, jobs list', async () => {
		await page.fill('#token', TOKEN);
		await page.click('#signin-form button[type=submit]');
		await page.waitForSelector(`#jobs-table tr[data-id="${JOB}"]`);
		const who = await rest('GET', '/whoami');
		check((await page.textContent('#who-user')) === who.body.user, 'header does not name the user');
		const row = await page.textContent(`#jobs-table tr[data-id="${JOB}"]`);
		check(/completed/.test(row), 'finished job row: ' + row);
		check(!(await page.$('#jobs-table td b')), 'a script was inserted as HTML');
		if (LIVE) {
			const live = await page.textContent(`#jobs-table tr[data-id="${LIVE}"]`);
			check(/running/.test(live), 'running job row: ' + live);
		}
		await shot('03-jobs');
	});

	await step('job page, logs', async () => {
		await page.click(`#jobs-table a[href="#/jobs/${JOB}"]`);
		await page.waitForSelector('#log-state.ended');
		const logs = await page.textContent('#logs');
		check(logs.includes(JOB_TEXT), `logs of ${JOB} lack ${JSON.stringify(JOB_TEXT)}: ${JSON.stringify(logs)}`);
		check(/completed \(exit 0\)/.test(await page.textContent('#log-state')), 'log state: ' + await page.textContent('#log-state'));
		check(await page.isDisabled('#stop'), 'Stop is enabled on a finished job');
		check(!(await page.$('#logs b, #job-details b, pre.script-full b')), 'job output was inserted as HTML');
		await shot('04-job');
	});

	if (LIVE) {
		await step('running job: live logs, stop', async () => {
			await go('#/jobs/' + LIVE);
			await page.waitForFunction((t) => document.getElementById('logs')?.textContent.includes(t), LIVE_TEXT);
			check((await page.textContent('#log-state')) === 'following…', 'log state of a running job: ' + await page.textContent('#log-state'));
			await shot('05-job-live');
			await page.click('#stop');
			await page.waitForSelector('#log-state.ended');
			check(/failed/.test(await page.textContent('#log-state')), 'after Stop: ' + await page.textContent('#log-state'));
			await page.waitForSelector('#job-details .st-failed');
			await shot('06-job-stopped');
		});
	}

	await step('schedules: bad expression, create, disable', async () => {
		await go('#/schedules');
		await page.waitForSelector('#cron-form');
		await page.fill('#cron-expression', 'every tuesday');
		await page.fill('#cron-script', 'echo from-cron');
		await page.click('#cron-form button[type=submit]');
		const err = await page.waitForSelector('#cron-error .error');
		const text = await err.textContent();
		check(/expression/.test(text), 'the 400 does not name the field: ' + text);
		await shot('07-schedule-error');
		await page.fill('#cron-expression', '*/5 * * * *');
		await page.fill('#cron-name', 'dash-nightly');
		await page.fill('#cron-timezone', 'Europe/Berlin');
		await page.click('#cron-form button[type=submit]');
		const row = '#cron-table tr[data-name="dash-nightly"]';
		await page.waitForSelector(row);
		check(!(await page.$('#cron-error .error')), 'error still shown after a good create');
		check(/enabled/.test(await page.textContent(row)), 'new schedule is not enabled');
		await page.click(`${row} button.toggle`);
		await page.waitForFunction((s) => /disabled/.test(document.querySelector(s)?.textContent || ''), row);
		const { body } = await rest('GET', '/cron-jobs');
		const c = body.cron_jobs.find((x) => x.name === 'dash-nightly');
		check(c && c.enabled === false && c.timezone === 'Europe/Berlin' && c.script === 'echo from-cron', 'schedule via API: ' + JSON.stringify(c));
		await shot('08-schedules');
	});

	await step('tokens: create (shown once), revoke', async () => {
		await go('#/tokens');
		await page.waitForSelector('#token-table');
		await page.fill('#token-name', 'dash-token');
		await page.click('#token-form button[type=submit]');
		const secret = await (await page.waitForSelector('#new-token-value')).inputValue();
		check(/^mags_[0-9a-f]{40}$/.test(secret), 'new token: ' + secret);
		check((await rest('GET', '/whoami', undefined, secret)).status === 200, 'the new token does not work');
		await page.waitForSelector('#token-table tr[data-name="dash-token"]');
		check(!(await page.textContent('#token-table')).includes(secret), 'the token list shows a secret');
		await shot('09-token-created');
		await go('#/jobs');
		await page.waitForSelector('#jobs-table');
		await go('#/tokens');
		await page.waitForSelector('#token-table tr[data-name="dash-token"]');
		check(!(await page.$('#new-token-value')), 'the secret is shown a second time');
		check(!(await page.content()).includes(secret), 'the secret is still in the page');
		await page.click('#token-table tr[data-name="dash-token"] button.danger');
		await page.waitForSelector('#token-msg .ok');
		check(!(await page.$('#token-table tr[data-name="dash-token"]')), 'revoked token still listed');
		check((await rest('GET', '/whoami', undefined, secret)).status === 401, 'the revoked token still works');
		await shot('10-tokens');
	});

	await step('URLs: create alias, bad alias', async () => {
		await go('#/urls');
		await page.waitForSelector('#alias-form');
		await page.fill('#alias-name', 'Bad_Alias');
		await page.selectOption('#alias-kind', 'workspace');
		await page.fill('#alias-target', WS);
		await page.click('#alias-form button[type=submit]');
		const err = await page.waitForSelector('#alias-error .error');
		check(/alias/.test(await err.textContent()), 'bad alias: ' + await err.textContent());
		await page.fill('#alias-name', 'dash-alias');
		await page.click('#alias-form button[type=submit]');
		await page.waitForSelector('#alias-table tr[data-alias="dash-alias"]');
		const { body } = await rest('GET', '/url-aliases/dash-alias');
		check(body.workspace === WS, 'alias via API: ' + JSON.stringify(body));
		await shot('11-urls');
	});

	await step('workspaces: delete', async () => {
		await go('#/workspaces');
		const row = `#ws-table tr[data-name="${WS}"]`;
		await page.waitForSelector(row);
		await shot('12-workspaces');
		const before = dialogs;
		await page.click(`${row} button.danger`);
		await page.waitForSelector(row, { state: 'detached' });
		check(dialogs === before + 1, 'delete did not ask for confirmation');
		check((await rest('GET', '/workspaces/' + WS)).status === 404, 'workspace still there after delete');
		await shot('13-workspace-deleted');
	});

	await step('approve a pending login', async () => {
		const start = await rest('POST', '/cli-logins', { client: 'dashboard test' }, null);
		check(start.status === 201, 'POST /cli-logins: ' + JSON.stringify(start));
		const { code, secret, verify_url: url } = start.body;
		check(url === `${BASE}/dashboard/#/approve/${code}`, 'verify_url: ' + url);
		const pending = await rest('GET', `/cli-logins/${code}/token?secret=${secret}`, undefined, null);
		check(pending.body.status === 'pending', 'before approval: ' + JSON.stringify(pending.body));
		await page.goto(url);
		await page.waitForSelector('#approve-btn');
		check((await page.textContent('#approve-code')) === code, 'the page shows another code');
		check((await page.textContent('#approve-client')) === 'dashboard test', 'the page shows another client');
		await shot('14-approve');
		await page.click('#approve-btn');
		const ok = await page.waitForSelector('#approve-msg .ok');
		check(/Approved/.test(await ok.textContent()), 'after approve: ' + await ok.textContent());
		await shot('15-approved');
		const poll = await rest('GET', `/cli-logins/${code}/token?secret=${secret}`, undefined, null);
		check(poll.status === 200 && poll.body.status === 'approved' && /^mags_/.test(poll.body.token || ''),
			'poll after approve: ' + JSON.stringify(poll));
		check((await rest('GET', '/whoami', undefined, poll.body.token)).status === 200, 'the approved token does not work');
	});

	await step('deny a pending login', async () => {
		const { body: { code, secret } } = await rest('POST', '/cli-logins', { client: 'to be denied' }, null);
		await go('#/approve/' + code);
		await page.waitForSelector('#deny-btn');
		await page.click('#deny-btn');
		await page.waitForSelector('#approve-msg .error');
		const poll = await rest('GET', `/cli-logins/${code}/token?secret=${secret}`, undefined, null);
		check(poll.body.status === 'denied' && !poll.body.token, 'poll after deny: ' + JSON.stringify(poll.body));
	});

	await step('sign out', async () => {
		await go('#/jobs');
		await page.waitForSelector('#jobs-table');
		await page.click('#signout');
		await page.waitForSelector('#signin-form');
		check(await page.evaluate(() => localStorage.getItem('mags.token')) === null, 'token kept after sign out');
		check(await page.isHidden('#nav'), 'navigation shown while signed out');
		await shot('16-signed-out');
	});

	await step('approve link while signed out: sign in, then approve', async () => {
		const { body: { code, secret, verify_url: url } } = await rest('POST', '/cli-logins', { client: 'signed out' }, null);
		await page.goto(url);
		await page.waitForSelector('#signin-form');
		await page.fill('#token', TOKEN);
		await page.click('#signin-form button[type=submit]');
		await page.waitForSelector('#approve-btn');
		check((await page.textContent('#approve-code')) === code, 'after sign-in: another code');
		await page.click('#approve-btn');
		await page.waitForSelector('#approve-msg .ok');
		const poll = await rest('GET', `/cli-logins/${code}/token?secret=${secret}`, undefined, null);
		check(poll.body.status === 'approved', 'poll: ' + JSON.stringify(poll.body));
		await page.click('#signout');
		await page.waitForSelector('#signin-form');
	});
} catch (e) {
	console.error(`FAIL ${current}: ${e.message}`);
	try {
		await shot('FAIL-' + current.replace(/[^a-z0-9]+/gi, '-'));
	} catch { /* the browser may be gone */ }
	await browser.close();
	process.exit(1);
}
await browser.close();
console.log('dashboard: all pages ok; screenshots in ' + SHOTS);
