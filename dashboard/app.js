// SPDX-License-Identifier: MIT
// The Mags dashboard: one page, hash routes, plain DOM. It talks to magsd's
// REST API (/api/v1, docs/api.yaml) with the API token the user pasted, kept
// in localStorage. Everything shown is inserted as text (textContent,
// setAttribute), never as HTML: job output and names come from users.
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'mags.token';

/* ---- small helpers ------------------------------------------------------ */

// h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, ...) -> element
function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k.startsWith('on'))
			el.addEventListener(k.slice(2), v);
		else if (k === 'text')
			el.textContent = v;
		else
			el.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children.flat()) {
		if (c === null || c === undefined || c === false)
			continue;
		el.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return el;
}

function fmtTime(s) {
	if (!s)
		return '—';
	const d = new Date(s);
	if (isNaN(d))
		return s;
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtBytes(n) {
	if (n === null || n === undefined)
		return '—';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// A link only for http(s) URLs: a job's URL comes from the server, but stay safe.
function urlLink(url) {
	if (!url)
		return '—';
	if (!/^https?:\/\//i.test(url))
		return url;
	return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'url' }, url);
}

function firstLine(s, max = 60) {
	const line = String(s || '').split('\n')[0];
	return line.length > max ? line.slice(0, max - 1) + '…' : line;
}

function statusBadge(job) {
	const st = job.sleeping ? 'sleeping' : job.status;
	return h('span', { class: 'badge st-' + st, text: st });
}

function errorBox(msg) {
	return h('p', { class: 'error', role: 'alert', text: msg });
}

// Replaces the children of el (an inline error/notice slot).
function show(el, ...nodes) {
	el.replaceChildren(...nodes);
}

/* ---- the API ------------------------------------------------------------ */

class ApiError extends Error {
	constructor(status, msg) {
		super(msg);
		this.status = status;
	}
}

function token() {
	return localStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body, opts = {}) {
	const headers = {};
	const tok = opts.token !== undefined ? opts.token : token();
	if (tok)
		headers.Authorization = 'Bearer ' + tok;
	if (body !== undefined)
		headers['Content-Type'] = 'application/json';
	let resp;
	try {
		resp = await fetch(API + path, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
			signal: opts.signal,
			cache: 'no-store',
		});
	} catch (e) {
		if (e.name === 'AbortError')
			throw e;
		throw new ApiError(0, 'cannot reach magsd: ' + e.message);
	}
	let data = null;
	const text = await resp.text();
	try {
		data = text ? JSON.parse(text) : null;
	} catch {
		data = null;
	}
	if (!resp.ok) {
		const msg = data && typeof data.error === 'string' ? data.error : `HTTP ${resp.status}`;
		if (resp.status === 401 && opts.token === undefined && token()) {
			signOut('Your token is no longer accepted; sign in again.');
			throw new ApiError(401, msg);
		}
		throw new ApiError(resp.status, msg);
	}
	return data;
}

/* ---- session and routing ------------------------------------------------ */

const state = { user: null, page: null, notice: null };
const view = () => document.getElementById('view');

function signOut(notice) {
	localStorage.removeItem(TOKEN_KEY);
	state.user = null;
	state.notice = notice || null;
	if (location.hash.startsWith('#/approve/')) {
		render(); // come back to the same approval after signing in again
	} else {
		location.hash = '#/signin';
		render();
	}
}

function setChrome() {
	const signedIn = !!state.user;
	document.getElementById('nav').hidden = !signedIn;
	document.getElementById('who').hidden = !signedIn;
	document.getElementById('who-user').textContent = signedIn ? state.user : '';
	for (const a of document.querySelectorAll('#nav a'))
		a.classList.toggle('active', a.dataset.page === state.page);
}

const routes = [
	[/^#\/jobs\/([^/]+)$/, 'jobs', pageJob],
	[/^#\/jobs$/, 'jobs', pageJobs],
	[/^#\/workspaces$/, 'workspaces', pageWorkspaces],
	[/^#\/schedules$/, 'schedules', pageSchedules],
	[/^#\/urls$/, 'urls', pageUrls],
	[/^#\/tokens$/, 'tokens', pageTokens],
	[/^#\/approve\/([^/]+)$/, null, pageApprove],
];

let current = null; // AbortController of the page on screen

async function render() {
	if (current)
		current.abort();
	const ctl = new AbortController();
	current = ctl;
	const hash = location.hash || '#/jobs';
	if (!token() || !state.user) {
		if (token() && !state.user) {
			try {
				const who = await api('GET', '/whoami', undefined, { signal: ctl.signal });
				state.user = who.user;
			} catch (e) {
				if (ctl.signal.aborted)
					return;
				if (!(e instanceof ApiError) || e.status !== 401) {
					state.page = null;
					setChrome();
					view().replaceChildren(h('h1', {}, 'Mags'), errorBox(e.message));
					return;
				}
				localStorage.removeItem(TOKEN_KEY);
				state.notice = 'Your token is no longer accepted; sign in again.';
			}
		}
		if (ctl.signal.aborted)
			return;
		if (!state.user) {
			state.page = null;
			setChrome();
			return pageSignIn(hash === '#/signin' ? '#/jobs' : hash);
		}
	}
	if (hash === '#/signin' || hash === '#/' || hash === '#') {
		location.replace('#/jobs');
		return;
	}
	for (const [re, page, fn] of routes) {
		const m = hash.match(re);
		if (m) {
			state.page = page;
			setChrome();
			view().replaceChildren();
			try {
				await fn(ctl.signal, ...m.slice(1).map(decodeURIComponent));
			} catch (e) {
				if (e.name === 'AbortError' || ctl.signal.aborted)
					return;
				view().append(errorBox(e.message));
			}
			return;
		}
	}
	state.page = null;
	setChrome();
	view().replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/jobs' }, 'Go to jobs')));
}

/* ---- sign in ------------------------------------------------------------ */

function pageSignIn(next) {
	const err = h('div', { id: 'signin-error' });
	if (state.notice) {
		err.append(h('p', { class: 'notice-text', role: 'status' }, state.notice));
		state.notice = null;
	}
	const input = h('input', {
		id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
		placeholder: 'mags_…', required: true,
	});
	const form = h('form', { id: 'signin-form', class: 'card narrow' },
		h('h1', {}, 'Sign in'),
		h('p', {}, 'Paste an API token. ', h('code', {}, 'magsd token create'),
			' prints one; ', h('code', {}, 'mags login'), ' makes one through this dashboard.'),
		h('label', { for: 'token' }, 'API token'),
		input,
		err,
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		const tok = input.value.trim();
		show(err);
		if (!tok)
			return show(err, errorBox('Paste a token first.'));
		try {
			const who = await api('GET', '/whoami', undefined, { token: tok });
			localStorage.setItem(TOKEN_KEY, tok);
			state.user = who.user;
			if (location.hash === next)
				render();
			else
				location.hash = next;
		} catch (e) {
			show(err, errorBox(e.status === 401 ? 'That token was not accepted: ' + e.message : e.message));
		}
	});
	view().replaceChildren(form);
	input.focus();
}

/* ---- jobs --------------------------------------------------------------- */

async function pageJobs(signal) {
	const v = view();
	v.append(h('h1', {}, 'Jobs'));
	const { jobs } = await api('GET', '/mags-jobs?limit=200', undefined, { signal });
	if (!jobs.length) {
		v.append(h('p', { class: 'muted' }, 'No jobs yet. Run one with ', h('code', {}, 'mags run \'echo hi\''), '.'));
		return;
	}
	v.append(h('table', { id: 'jobs-table' },
		h('thead', {}, h('tr', {}, ['ID', 'Status', 'Script', 'Created', 'URL'].map((t) => h('th', {}, t)))),
		h('tbody', {}, jobs.map((j) => h('tr', { 'data-id': j.id },
			h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(j.id), class: 'mono' }, j.id)),
			h('td', {}, statusBadge(j)),
			h('td', { class: 'mono script', title: j.script }, firstLine(j.script)),
			h('td', {}, fmtTime(j.created_at)),
			h('td', {}, urlLink(j.url)))))));
}

async function pageJob(signal, id) {
	const v = view();
	const job = await api('GET', '/mags-jobs/' + encodeURIComponent(id), undefined, { signal });
	const msg = h('div', { id: 'job-msg' });
	const stop = h('button', { type: 'button', id: 'stop', class: 'danger' }, 'Stop');
	const details = h('dl', { id: 'job-details', class: 'details' });
	const fill = (j) => {
		const rows = [
			['Status', statusBadge(j)],
			['Exit code', j.exit_code === null || j.exit_code === undefined ? '—' : String(j.exit_code)],
			['Error', j.error || '—'],
			['Workspace', j.workspace || '—'],
			['URL', urlLink(j.url)],
			['Engine', j.engine || '—'],
			['Image', j.image || '—'],
			['Created', fmtTime(j.created_at)],
			['Started', fmtTime(j.started_at)],
			['Finished', fmtTime(j.finished_at)],
		];
		if (j.always_on)
			rows.push(['Always on', `yes (restarts: ${j.restarts || 0})`]);
		if (j.cron_id)
			rows.push(['Schedule', j.cron_id]);
		if (j.ssh)
			rows.push(['SSH', `${j.ssh.user}@${j.ssh.host} -p ${j.ssh.port}`]);
		details.replaceChildren(...rows.flatMap(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]));
		stop.disabled = !(j.status === 'queued' || j.status === 'running');
	};
	fill(job);
	stop.addEventListener('click', async () => {
		if (!confirm(`Stop job ${id}?`))
			return;
		show(msg);
		try {
			fill(await api('POST', `/mags-jobs/${encodeURIComponent(id)}/stop`, undefined, { signal }));
		} catch (e) {
			if (!signal.aborted)
				show(msg, errorBox(e.message));
		}
	});
	const logState = h('span', { id: 'log-state', class: 'muted' }, 'connecting…');
	const logs = h('pre', { id: 'logs', class: 'logs' });
	v.append(
		h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
		h('div', { class: 'titlebar' }, h('h1', {}, 'Job ', h('span', { class: 'mono' }, id)), stop),
		msg, details,
		h('h2', {}, 'Script'), h('pre', { class: 'script-full' }, job.script),
		h('div', { class: 'titlebar' }, h('h2', {}, 'Logs'), logState), logs);
	await followLogs(signal, id, logs, logState, async () => {
		try {
			fill(await api('GET', '/mags-jobs/' + encodeURIComponent(id), undefined, { signal }));
		} catch (e) {
			if (!signal.aborted)
				show(msg, errorBox(e.message));
		}
	});
}

// Streams GET /mags-jobs/ID/logs?follow=true (NDJSON) into pre until the final
// {status, exit_code, error} line; then calls done().
async function followLogs(signal, id, pre, stateEl, done) {
	let resp;
	try {
		resp = await fetch(`${API}/mags-jobs/${encodeURIComponent(id)}/logs?follow=true`, {
			headers: { Authorization: 'Bearer ' + token() }, signal, cache: 'no-store',
		});
	} catch (e) {
		if (!signal.aborted)
			stateEl.textContent = 'cannot reach magsd: ' + e.message;
		return;
	}
	if (!resp.ok) {
		let m = `HTTP ${resp.status}`;
		try {
			m = (await resp.json()).error || m;
		} catch { /* not JSON */ }
		stateEl.textContent = 'logs: ' + m;
		return;
	}
	stateEl.textContent = 'following…';
	const reader = resp.body.getReader();
	const dec = new TextDecoder();
	let buf = '';
	let ended = false;
	const line = (s) => {
		if (!s.trim())
			return; // keep-alive
		let o;
		try {
			o = JSON.parse(s);
		} catch {
			return;
		}
		if (typeof o.seq === 'number') {
			const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
			pre.append(h('span', { class: 'log-' + o.stream, 'data-seq': o.seq }, o.data));
			if (atBottom)
				pre.scrollTop = pre.scrollHeight;
		} else if (o.status) {
			ended = true;
			let t = 'ended: ' + o.status;
			if (o.exit_code !== null && o.exit_code !== undefined)
				t += ` (exit ${o.exit_code})`;
			if (o.error)
				t += ' — ' + o.error;
			stateEl.textContent = t;
			stateEl.className = 'ended st-' + o.status;
		}
	};
	try {
		for (;;) {
			const { value, done: eof } = await reader.read();
			if (eof)
				break;
			buf += dec.decode(value, { stream: true });
			let i;
			while ((i = buf.indexOf('\n')) >= 0) {
				line(buf.slice(0, i));
				buf = buf.slice(i + 1);
			}
		}
		line(buf + dec.decode());
	} catch (e) {
		if (signal.aborted)
			return;
		stateEl.textContent = 'log stream broke: ' + e.message;
		return;
	}
	if (!ended)
		stateEl.textContent = 'log stream ended early';
	if (!pre.childNodes.length)
		pre.append(h('span', { class: 'muted' }, '(no output)'));
	await done();
}

/* ---- workspaces --------------------------------------------------------- */

async function pageWorkspaces(signal) {
	const v = view();
	v.append(h('h1', {}, 'Workspaces'));
	const msg = h('div', { id: 'ws-msg' });
	v.append(msg);
	const { workspaces } = await api('GET', '/workspaces', undefined, { signal });
	if (!workspaces.length) {
		v.append(h('p', { class: 'muted' }, 'No workspaces. Jobs run with ', h('code', {}, '-w NAME'), ' keep one.'));
		return;
	}
	v.append(h('table', { id: 'ws-table' },
		h('thead', {}, h('tr', {}, ['Name', 'Kind', 'In use by', 'Size', 'Synced', 'Updated', ''].map((t) => h('th', {}, t)))),
		h('tbody', {}, workspaces.map((w) => {
			const kind = [w.base_image ? 'base image' : null, w.persistent ? 'persistent' : 'local',
				w.from ? 'from ' + w.from : null, w.on_host ? null : 'not on this host'].filter(Boolean).join(', ');
			const del = h('button', { type: 'button', class: 'danger small' }, 'Delete');
			del.addEventListener('click', async () => {
				if (!confirm(`Delete workspace "${w.name}"? Its disk and its copy in the object store go.`))
					return;
				show(msg);
				try {
					await api('DELETE', '/workspaces/' + encodeURIComponent(w.name), undefined, { signal });
					render();
				} catch (e) {
					if (!signal.aborted)
						show(msg, errorBox(`Delete "${w.name}": ${e.message}`));
				}
			});
			return h('tr', { 'data-name': w.name },
				h('td', { class: 'mono' }, w.name),
				h('td', {}, kind),
				h('td', {}, w.in_use_by ? h('a', { href: '#/jobs/' + encodeURIComponent(w.in_use_by), class: 'mono' }, w.in_use_by) : '—'),
				h('td', {}, fmtBytes(w.size_bytes)),
				h('td', {}, w.version ? `v${w.version}, ${fmtTime(w.synced_at)}` : '—'),
				h('td', {}, fmtTime(w.updated_at)),
				h('td', { class: 'actions' }, del));
		}))));
}

/* ---- schedules ---------------------------------------------------------- */

async function pageSchedules(signal) {
	const v = view();
	v.append(h('h1', {}, 'Schedules'));
	const msg = h('div', { id: 'cron-msg' });
	const list = h('div', { id: 'cron-list' });
	const fields = {
		expression: h('input', { id: 'cron-expression', name: 'expression', required: true, placeholder: '*/15 * * * *', spellcheck: 'false' }),
		name: h('input', { id: 'cron-name', name: 'name', placeholder: 'optional' }),
		timezone: h('input', { id: 'cron-timezone', name: 'timezone', placeholder: 'UTC', spellcheck: 'false' }),
		script: h('textarea', { id: 'cron-script', name: 'script', rows: 3, required: true, placeholder: 'echo hello', spellcheck: 'false' }),
	};
	const formErr = h('div', { id: 'cron-error' });
	const form = h('form', { id: 'cron-form', class: 'card' },
		h('h2', {}, 'New schedule'),
		h('div', { class: 'grid' },
			h('div', {}, h('label', { for: 'cron-expression' }, 'Cron expression'), fields.expression,
				h('small', { class: 'muted' }, 'minute hour day month weekday, or @hourly, @daily…')),
			h('div', {}, h('label', { for: 'cron-name' }, 'Name'), fields.name),
			h('div', {}, h('label', { for: 'cron-timezone' }, 'Time zone'), fields.timezone,
				h('small', { class: 'muted' }, 'IANA name like Europe/Berlin; empty = UTC'))),
		h('label', { for: 'cron-script' }, 'Script'), fields.script,
		formErr,
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create schedule')));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		show(formErr);
		const body = { expression: fields.expression.value.trim(), script: fields.script.value };
		if (fields.name.value.trim())
			body.name = fields.name.value.trim();
		if (fields.timezone.value.trim())
			body.timezone = fields.timezone.value.trim();
		try {
			const c = await api('POST', '/cron-jobs', body, { signal });
			form.reset();
			show(msg, h('p', { class: 'ok' }, `Created schedule ${c.name || c.id}; next run ${fmtTime(c.next_run_at)}.`));
			await loadSchedules(signal, list, msg);
		} catch (e) {
			if (!signal.aborted)
				show(formErr, errorBox(e.message));
		}
	});
	v.append(msg, list, form);
	await loadSchedules(signal, list, msg);
}

async function loadSchedules(signal, list, msg) {
	const { cron_jobs: crons } = await api('GET', '/cron-jobs', undefined, { signal });
	if (!crons.length) {
		list.replaceChildren(h('p', { class: 'muted' }, 'No schedules yet.'));
		return;
	}
	const act = (label, cls, fn) => {
		const b = h('button', { type: 'button', class: cls + ' small' }, label);
		b.addEventListener('click', async () => {
			show(msg);
			try {
				if (await fn() !== false)
					await loadSchedules(signal, list, msg);
			} catch (e) {
				if (!signal.aborted)
					show(msg, errorBox(e.message));
			}
		});
		return b;
	};
	list.replaceChildren(h('table', { id: 'cron-table' },
		h('thead', {}, h('tr', {}, ['Name', 'Expression', 'Script', 'Enabled', 'Next run', 'Last run', ''].map((t) => h('th', {}, t)))),
		h('tbody', {}, crons.map((c) => {
			const path = '/cron-jobs/' + encodeURIComponent(c.id);
			const last = c.last_run_at ? [fmtTime(c.last_run_at), c.last_job_id
				? h('div', {}, h('a', { href: '#/jobs/' + encodeURIComponent(c.last_job_id), class: 'mono' }, c.last_job_id)) : null] : '—';
			return h('tr', { 'data-id': c.id, 'data-name': c.name || '' },
				h('td', {}, c.name || h('span', { class: 'mono muted' }, c.id)),
				h('td', { class: 'mono' }, c.expression, c.timezone ? h('div', { class: 'muted' }, c.timezone) : null),
				h('td', { class: 'mono script', title: c.script }, firstLine(c.script, 40)),
				h('td', {}, h('span', { class: 'badge ' + (c.enabled ? 'st-running' : 'st-off') }, c.enabled ? 'enabled' : 'disabled')),
				h('td', {}, fmtTime(c.next_run_at)),
				h('td', {}, last, c.last_error ? h('div', { class: 'error-text' }, c.last_error) : null),
				h('td', { class: 'actions' },
					act(c.enabled ? 'Disable' : 'Enable', 'toggle', () => api('PATCH', path, { enabled: !c.enabled }, { signal })),
					act('Delete', 'danger', () => {
						if (!confirm(`Delete schedule "${c.name || c.id}"? Jobs it started stay.`))
							return false;
						return api('DELETE', path, undefined, { signal });
					})));
		}))));
}

/* ---- URLs --------------------------------------------------------------- */

async function pageUrls(signal) {
	const v = view();
	v.append(h('h1', {}, 'URLs'));
	const msg = h('div', { id: 'url-msg' });
	const [{ jobs }, { aliases }] = await Promise.all([
		api('GET', '/mags-jobs?status=running&limit=1000', undefined, { signal }),
		api('GET', '/url-aliases', undefined, { signal }),
	]);
	const withUrl = jobs.filter((j) => j.url);
	v.append(h('h2', {}, 'Running sandboxes'));
	if (!withUrl.length)
		v.append(h('p', { class: 'muted' }, 'No running job has a public URL. Run one with ', h('code', {}, 'mags run --url …'), '.'));
	else
		v.append(h('table', { id: 'url-jobs' },
			h('thead', {}, h('tr', {}, ['URL', 'Job', 'Workspace', 'Status'].map((t) => h('th', {}, t)))),
			h('tbody', {}, withUrl.map((j) => h('tr', {},
				h('td', {}, urlLink(j.url)),
				h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(j.id), class: 'mono' }, j.id)),
				h('td', { class: 'mono' }, j.workspace || '—'),
				h('td', {}, statusBadge(j)))))));

	v.append(h('h2', {}, 'Aliases'), msg);
	if (!aliases.length)
		v.append(h('p', { class: 'muted' }, 'No aliases.'));
	else
		v.append(h('table', { id: 'alias-table' },
			h('thead', {}, h('tr', {}, ['Alias', 'Points at', 'URL', 'Created', ''].map((t) => h('th', {}, t)))),
			h('tbody', {}, aliases.map((a) => {
				const del = h('button', { type: 'button', class: 'danger small' }, 'Delete');
				del.addEventListener('click', async () => {
					if (!confirm(`Delete alias "${a.alias}"?`))
						return;
					show(msg);
					try {
						await api('DELETE', '/url-aliases/' + encodeURIComponent(a.alias), undefined, { signal });
						render();
					} catch (e) {
						if (!signal.aborted)
							show(msg, errorBox(e.message));
					}
				});
				return h('tr', { 'data-alias': a.alias },
					h('td', { class: 'mono' }, a.alias),
					h('td', {}, a.workspace ? ['workspace ', h('span', { class: 'mono' }, a.workspace)]
						: a.job_id ? ['job ', h('a', { href: '#/jobs/' + encodeURIComponent(a.job_id), class: 'mono' }, a.job_id)] : '—'),
					h('td', {}, urlLink(a.url)),
					h('td', {}, fmtTime(a.created_at)),
					h('td', { class: 'actions' }, del));
			}))));

	const alias = h('input', { id: 'alias-name', name: 'alias', required: true, placeholder: 'my-app', spellcheck: 'false' });
	const kind = h('select', { id: 'alias-kind', name: 'kind' },
		h('option', { value: 'workspace' }, 'workspace'), h('option', { value: 'job_id' }, 'job'));
	const target = h('input', { id: 'alias-target', name: 'target', required: true, placeholder: 'workspace name or job id', spellcheck: 'false' });
	const formErr = h('div', { id: 'alias-error' });
	const form = h('form', { id: 'alias-form', class: 'card' },
		h('h2', {}, 'New alias'),
		h('div', { class: 'grid' },
			h('div', {}, h('label', { for: 'alias-name' }, 'Alias'), alias,
				h('small', { class: 'muted' }, 'a-z, 0-9 and -; becomes ALIAS.your-domain')),
			h('div', {}, h('label', { for: 'alias-kind' }, 'For a'), kind),
			h('div', {}, h('label', { for: 'alias-target' }, 'Workspace or job'), target)),
		formErr,
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create alias')));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		show(formErr);
		try {
			await api('POST', '/url-aliases', { alias: alias.value.trim(), [kind.value]: target.value.trim() }, { signal });
			render();
		} catch (e) {
			if (!signal.aborted)
				show(formErr, errorBox(e.message));
		}
	});
	v.append(form);
}

/* ---- tokens ------------------------------------------------------------- */

async function pageTokens(signal) {
	const v = view();
	v.append(h('h1', {}, 'API tokens'));
	const msg = h('div', { id: 'token-msg' });
	const fresh = h('div', { id: 'new-token' });
	const list = h('div', { id: 'token-list' });
	const name = h('input', { id: 'token-name', name: 'name', placeholder: 'api', maxlength: 64 });
	const formErr = h('div', { id: 'token-error' });
	const form = h('form', { id: 'token-form', class: 'card' },
		h('h2', {}, 'New token'),
		h('label', { for: 'token-name' }, 'Name'), name,
		formErr,
		h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		show(formErr);
		const body = name.value.trim() ? { name: name.value.trim() } : {};
		try {
			const t = await api('POST', '/tokens', body, { signal });
			form.reset();
			const secret = h('input', { id: 'new-token-value', class: 'mono', readonly: true, value: t.token, size: 50 });
			const copy = h('button', { type: 'button', id: 'copy-token' }, 'Copy');
			const copied = h('span', { class: 'muted' });
			copy.addEventListener('click', async () => {
				secret.select();
				try {
					await navigator.clipboard.writeText(t.token);
					copied.textContent = 'Copied.';
				} catch {
					copied.textContent = 'Selected: press Ctrl+C to copy.';
				}
			});
			show(fresh, h('div', { class: 'card notice' },
				h('p', {}, h('strong', {}, `Token "${t.name}" created. Copy it now: it is shown only this once.`)),
				h('div', { class: 'row' }, secret, copy, copied)));
			await loadTokens(signal, list, msg);
		} catch (e) {
			if (!signal.aborted)
				show(formErr, errorBox(e.message));
		}
	});
	v.append(msg, fresh, list, form);
	await loadTokens(signal, list, msg);
}

async function loadTokens(signal, list, msg) {
	const { tokens } = await api('GET', '/tokens', undefined, { signal });
	list.replaceChildren(h('table', { id: 'token-table' },
		h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Created', 'Last used', ''].map((t) => h('th', {}, t)))),
		h('tbody', {}, tokens.map((t) => {
			const revoke = h('button', { type: 'button', class: 'danger small' }, 'Revoke');
			revoke.addEventListener('click', async () => {
				const q = t.current ? `Revoke "${t.name}"? It is the token this browser uses: you will be signed out.`
					: `Revoke token "${t.name}"? Anything using it stops working.`;
				if (!confirm(q))
					return;
				show(msg);
				try {
					await api('DELETE', '/tokens/' + encodeURIComponent(t.id), undefined, { signal });
					if (t.current)
						return signOut('You revoked the token this browser used.');
					show(msg, h('p', { class: 'ok' }, `Revoked "${t.name}".`));
					await loadTokens(signal, list, msg);
				} catch (e) {
					if (!signal.aborted)
						show(msg, errorBox(e.message));
				}
			});
			return h('tr', { 'data-id': t.id, 'data-name': t.name || '' },
				h('td', {}, t.name || '—', t.current ? h('span', { class: 'badge st-queued' }, 'this browser') : null),
				h('td', { class: 'mono' }, t.prefix ? t.prefix + '…' : '—'),
				h('td', {}, fmtTime(t.created_at)),
				h('td', {}, fmtTime(t.last_used_at)),
				h('td', { class: 'actions' }, revoke));
		}))));
}

/* ---- approve a `mags login` ---------------------------------------------- */

async function pageApprove(signal, code) {
	const v = view();
	const box = h('div', { id: 'approve', class: 'card narrow' });
	v.append(box);
	const path = '/cli-logins/' + encodeURIComponent(code);
	let login;
	try {
		login = await api('GET', path, undefined, { signal });
	} catch (e) {
		if (signal.aborted)
			return;
		box.append(h('h1', {}, 'Approve a sign-in'), errorBox(e.message),
			h('p', {}, 'Run ', h('code', {}, 'mags login'), ' again for a new code.'));
		return;
	}
	const msg = h('div', { id: 'approve-msg' });
	const decided = (l) => {
		const ok = l.status === 'approved';
		show(msg, h('p', { class: ok ? 'ok' : 'error', role: 'status' }, ok
			? `Approved. ${l.client} is now signed in as ${state.user}; you can go back to your terminal.`
			: `This sign-in was ${l.status}.`));
	};
	const approve = h('button', { type: 'button', id: 'approve-btn', class: 'primary' }, 'Approve');
	const deny = h('button', { type: 'button', id: 'deny-btn', class: 'danger' }, 'Deny');
	const buttons = h('div', { class: 'actions' }, approve, deny);
	const act = (what) => async () => {
		approve.disabled = deny.disabled = true;
		try {
			const l = await api('POST', `${path}/${what}`, undefined, { signal });
			buttons.remove();
			decided(l);
		} catch (e) {
			approve.disabled = deny.disabled = false;
			if (!signal.aborted)
				show(msg, errorBox(e.message));
		}
	};
	approve.addEventListener('click', act('approve'));
	deny.addEventListener('click', act('deny'));
	box.append(h('h1', {}, 'Approve a sign-in'),
		h('p', {}, 'A command-line client asks for a new API token for ', h('strong', {}, state.user), '.'),
		h('dl', { class: 'details' },
			h('dt', {}, 'Client'), h('dd', { id: 'approve-client' }, login.client),
			h('dt', {}, 'Code'), h('dd', { id: 'approve-code', class: 'mono big' }, login.code),
			h('dt', {}, 'Expires'), h('dd', {}, fmtTime(login.expires_at))),
		h('p', { class: 'muted' }, 'Approve only if you just ran ', h('code', {}, 'mags login'),
			' and your terminal shows the same code.'),
		msg);
	if (login.status === 'pending')
		box.append(buttons);
	else
		decided(login);
}

/* ---- start -------------------------------------------------------------- */

document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', render);
window.addEventListener('storage', (ev) => {
	if (ev.key === TOKEN_KEY) { // signed in or out in another tab
		state.user = null;
		render();
	}
});
fetch(API + '/health', { cache: 'no-store' }).then((r) => r.json()).then((hl) => {
	document.getElementById('foot').textContent = `magsd ${hl.version} · engine ${hl.engine} · default image ${hl.default_image || '—'}`;
}).catch(() => {});
render();
