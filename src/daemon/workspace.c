// SPDX-License-Identifier: MIT
/*
 * Workspaces on the host and in the object store; see workspace.h.
 *
 * Files under STATE/workspaces/:
 *   blank.img          an empty ext4 of ENGINE_DISK_BYTES, made once with
 *                      mkfs.ext4 (sparse: ~4 MB of metadata); every new
 *                      workspace starts as a sparse copy of it
 *   u<uid>/<name>.img  named workspaces and base images
 *   local/<job>.img    a job's own workspace, deleted when the job ends
 * Uploads wait in STATE/uploads/<job>/<seq> until the job's sandbox runs.
 * In the store a workspace is "u<uid>.<name>" (store/wsync.h).
 */
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "fs.h"
#include "log.h"
#include "proc.h"
#include "xmalloc.h"

#define WS_WAIT_POLL_MS 200	/* re-check a workspace another job holds */
#define WS_RELEASE_WAIT_MS 30000	/* an ended job's VM is torn down within this */

static struct {
	char *root;		/* STATE/workspaces */
	char *uploads;		/* STATE/uploads */
	char *blank;
	struct store *store;
	pthread_mutex_t pull_mu;	/* one pull of a disk at a time */
} W = { .pull_mu = PTHREAD_MUTEX_INITIALIZER };

/* Copies src's data extents to dst (created; same size, holes kept). Returns 0 or <0 with err set. */
static int sparse_copy(const char *src, const char *dst, struct err *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err_set(err, errno, "open %s", src);
	char *tmp = xasprintf("%s.tmp", dst);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = 0;
	struct stat st;
	if (out < 0 || fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0) {
		r = err_set(err, errno, "create %s", tmp);
		goto out;
	}
	for (off_t pos = 0; pos < st.st_size;) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: only a hole is left */
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		loff_t ip = data, op = data;
		while (ip < hole) {
			ssize_t n = copy_file_range(in, &ip, out, &op, (size_t)(hole - ip), 0);
			if (n <= 0) {
				r = err_set(err, n < 0 ? errno : EIO, "copy %s to %s", src, tmp);
				goto out;
			}
		}
		pos = hole;
	}
	if (rename(tmp, dst) < 0)
		r = err_set(err, errno, "rename %s", tmp);
out:
	if (out >= 0)
		close(out);
	close(in);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

/* Makes STATE/workspaces/blank.img unless a good one is there. */
static int make_blank(struct err *err)
{
	struct stat st;
	if (stat(W.blank, &st) == 0 && (unsigned long long)st.st_size == ENGINE_DISK_BYTES)
		return 0;
	char *tmp = xasprintf("%s.tmp", W.blank);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)ENGINE_DISK_BYTES) < 0) {
		int r = err_set(err, errno, "create %s", tmp);
		if (fd >= 0)
			close(fd);
		free(tmp);
		return r;
	}
	close(fd);
	/* lazy init: the guest mounts with noinit_itable, so the tables stay unwritten holes */
	const char *argv[] = { "mkfs.ext4", "-q", "-F", "-m", "0", "-L", "mags-ws",
			 "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", tmp, NULL };
	int r = proc_run_quiet(argv);
	if (r != 0) {
		unlink(tmp);
		free(tmp);
		return err_set(err, r < 0 ? -r : EIO, "mkfs.ext4 of a blank workspace failed (%s)",
			       r < 0 ? "not found: apt-get install e2fsprogs" : "non-zero exit");
	}
	r = rename(tmp, W.blank) < 0 ? err_set(err, errno, "rename %s", tmp) : 0;
	free(tmp);
	return r;
}

int ws_init(const struct ws_config *cfg, struct err *err)
{
	W.root = xasprintf("%s/workspaces", cfg->state_dir);
	W.uploads = xasprintf("%s/uploads", cfg->state_dir);
	W.blank = xasprintf("%s/blank.img", W.root);
	char *local = xasprintf("%s/local", W.root);
	/* a crash leaves local disks behind; no job holds them any more */
	fs_rm_tree(local);
	int r = fs_mkdir_p(local, 0700);
	free(local);
	if (r < 0 || fs_mkdir_p(W.uploads, 0700) < 0)
		return err_set(err, errno, "create %s", W.root);
	if ((r = make_blank(err)) < 0)
		return r;
	char *url = cfg->store_url ? xstrdup(cfg->store_url) : xasprintf("file://%s/store", cfg->state_dir);
	struct store_opts o = { .endpoint = cfg->s3_endpoint ? cfg->s3_endpoint : getenv("MAGS_S3_ENDPOINT"),
				.region = getenv("AWS_REGION") };
	r = store_open(url, &o, &W.store, err);
	free(url);
	if (r < 0)
		return err_wrap(err, "--store");
	/* no job of this magsd runs yet: what they held is free (a node of a cluster: only its own jobs') */
	if (cluster_on())
		db_node_ws_release(cluster_node_id());
	else
		db_ws_release_all();
	return 0;
}

void ws_shutdown(void)
{
	if (W.store)
		store_close(W.store);
	W.store = NULL;
	free(W.root);
	free(W.uploads);
	free(W.blank);
	W.root = W.uploads = W.blank = NULL;
}

const char *ws_store_url(void)
{
	return W.store ? store_url(W.store) : "";
}

char *ws_disk_path(int64_t user_id, const char *name)
{
	return xasprintf("%s/u%lld/%s.img", W.root, (long long)user_id, name);
}

char *ws_upload_dir(const char *job_id, bool create)
{
	char *d = xasprintf("%s/%s", W.uploads, job_id);
	if (create)
		fs_mkdir_p(d, 0700);
	return d;
}

/* Removes the half-written disks (NAME.img.tmp of a copy, NAME.img.pull.XXXXXX of a pull) in dir. */
static void sweep_partial_disks(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		bool partial = (n > 8 && !strcmp(de->d_name + n - 8, ".img.tmp")) || strstr(de->d_name, ".img.pull.");
		if (de->d_name[0] == '.' || !partial)
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		if (unlink(p) == 0)
			log_info("removed %s, a disk half written when an earlier magsd stopped", p);
		free(p);
	}
	closedir(d);
}

void ws_sweep_partial(void)
{
	sweep_partial_disks(W.root);
	DIR *d = opendir(W.root);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (strcmp(de->d_name, "local") && de->d_name[0] != 'u'))
			continue;
		char *sub = xasprintf("%s/%s", W.root, de->d_name);
		sweep_partial_disks(sub);
		free(sub);
	}
	if (d)
		closedir(d);
}

void ws_sweep_uploads(void)
{
	DIR *d = opendir(W.uploads);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct job_row j;
		bool keep = db_job_get(de->d_name, 0, &j) == 0 &&
			    (!strcmp(j.status, "queued") || !strcmp(j.status, "running"));
		db_job_row_free(&j);
		char *dir = xasprintf("%s/%s", W.uploads, de->d_name);
		if (!keep) {
			fs_rm_tree(dir);
			log_info("job %s: removed its uploads, left by an earlier magsd", de->d_name);
		} else {
			DIR *jd = opendir(dir);
			struct dirent *fe;
			while (jd && (fe = readdir(jd)) != NULL)
				if (!strncmp(fe->d_name, ".upload-", 8)) {
					char *p = xasprintf("%s/%s", dir, fe->d_name);
					unlink(p);
					free(p);
				}
			if (jd)
				closedir(jd);
		}
		free(dir);
	}
	closedir(d);
}

/* Creates the directory a disk file goes in. */
static void make_parent(const char *path)
{
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	fs_mkdir_p(dir, 0700);
	free(dir);
}

static char *store_name(int64_t user_id, const char *name)
{
	return xasprintf("u%lld.%s", (long long)user_id, name);
}

/*
 * The workspace's row; one that only the store knows (an empty host data
 * directory) is recorded from its manifest first. -ENOENT when neither has it.
 */
static int ws_lookup(int64_t user_id, const char *name, struct ws_row *w, struct err *err)
{
	if (db_ws_get(user_id, name, w) == 0)
		return 0;
	char *sname = store_name(user_id, name);
	uint64_t version = 0;
	json_t *meta = NULL;
	int r = wsync_latest(W.store, sname, &version, &meta, err);
	free(sname);
	if (r == -ENOENT) {
		err_clear(err);
		return -ENOENT;
	}
	if (r < 0)
		return r;
	json_t *parent = json_object_get(meta, "parent");
	const char *p = json_string_value(parent);
	db_ws_adopt(user_id, name, true, json_is_true(json_object_get(meta, "base_image")),
		    p && ws_name_ok(p) ? p : NULL, (int64_t)version);
	json_decref(meta);
	log_info("workspace %s of user %lld: found in the store (version %llu)", name, (long long)user_id,
		 (unsigned long long)version);
	return db_ws_get(user_id, name, w) == 0 ? 0 : -ENOENT;
}

/* Names of the bases under `from`, top first, checked. Returns the count or <0 (-404/-409) with err set. */
static int base_chain(int64_t user_id, const char *from, char *names[ENGINE_LAYER_SLOTS], struct err *err)
{
	int n = 0;
	char *cur = xstrdup(from);
	while (cur) {
		if (n == ENGINE_LAYER_SLOTS) {
			free(cur);
			for (int i = 0; i < n; i++)
				free(names[i]);
			return err_set(err, 409, "base image chain under \"%s\" is deeper than %d", from, ENGINE_LAYER_SLOTS);
		}
		struct ws_row w;
		int r = ws_lookup(user_id, cur, &w, err);
		if (r < 0 || !w.base_image) {
			if (r == -ENOENT)
				r = err_set(err, 404, "no workspace named \"%s\"", cur);
			else if (r == 0)
				r = err_set(err, 409, "workspace \"%s\" is not a base image (make one with -w %s --base-image)",
					    cur, cur);
			if (r == -409 || r == -404)
				db_ws_row_free(&w);
			free(cur);
			for (int i = 0; i < n; i++)
				free(names[i]);
			return r;
		}
		names[n++] = cur;
		cur = w.parent ? xstrdup(w.parent) : NULL;
		db_ws_row_free(&w);
	}
	return n;
}

int ws_check_submit(int64_t user_id, const struct jobspec *js, struct err *err)
{
	if (js->ephemeral)
		return 0;
	char *names[ENGINE_LAYER_SLOTS];
	int r = 0;
	if (js->from) {
		int n = base_chain(user_id, js->from, names, err);
		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			free(names[i]);
	}
	if (js->workspace) {
		struct ws_row w;
		r = ws_lookup(user_id, js->workspace, &w, err);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		if (w.base_image)
			r = err_set(err, 409, "workspace \"%s\" is a base image (read-only); start a new workspace from it"
				    " with --from %s", w.name, w.name);
		else if (js->from && !w.parent)
			r = err_set(err, 409, "workspace \"%s\" already exists; it cannot be made --from \"%s\"", w.name, js->from);
		else if (js->from && strcmp(w.parent, js->from))
			r = err_set(err, 409, "workspace \"%s\" already exists (from \"%s\"); it cannot be made --from \"%s\"",
				    w.name, w.parent, js->from);
		db_ws_row_free(&w);
	}
	return r;
}

/* Pulls name's disk to path when it is not on this host. -ENOENT when the store has no version either. */
static int ensure_disk(int64_t user_id, const char *name, const char *path, ws_say_fn say, void *arg,
		       struct err *err)
{
	pthread_mutex_lock(&W.pull_mu);
	int r = 0;
	if (access(path, F_OK) != 0) {
		make_parent(path);
		char *sname = store_name(user_id, name);
		struct wsync_stats st = { 0 };
		r = wsync_pull(W.store, sname, path, &st, err);
		free(sname);
		if (r == 0) {
			char *line = xasprintf("pulled workspace %s from the store: version %llu, %llu MiB in %lld ms\n", name,
					       (unsigned long long)st.version, (unsigned long long)(st.downloaded_bytes >> 20),
					       (long long)st.ms);
			say(arg, line);
			free(line);
		}
	}
	pthread_mutex_unlock(&W.pull_mu);
	return r;
}

static int new_disk(const char *path, struct err *err)
{
	make_parent(path);
	return sparse_copy(W.blank, path, err);
}

/* Waits until this job holds the named workspace. */
static int hold(const struct job_row *j, int wake_fd, ws_say_fn say, void *arg, struct ws_row *w)
{
	bool said = false;
	for (;;) {
		if (db_ws_acquire(j->user_id, j->workspace, j->id, j->persist, j->from_ws, w) == 0)
			return 0;
		if (!said) {
			char *line = xasprintf("waiting for workspace %s: job %s is using it\n", j->workspace,
					       w->in_use_by ? w->in_use_by : "?");
			say(arg, line);
			free(line);
			said = true;
		}
		db_ws_row_free(w);
		struct pollfd p = { .fd = wake_fd, .events = POLLIN };
		if (poll(&p, 1, WS_WAIT_POLL_MS) > 0)
			return -EINTR;
	}
}

int ws_prepare(const struct job_row *j, int wake_fd, ws_say_fn say, void *arg, struct ws_job *wj, struct err *err)
{
	memset(wj, 0, sizeof *wj);
	wj->user_id = j->user_id;
	snprintf(wj->job_id, sizeof wj->job_id, "%s", j->id);
	wj->ephemeral = j->ephemeral;
	if (j->ephemeral)
		return 0;
	const char *from = j->from_ws;
	struct ws_row w = { 0 };
	int r = 0;
	if (j->workspace) {
		wj->name = xstrdup(j->workspace);
		r = ws_lookup(j->user_id, j->workspace, &w, err);
		if (r < 0 && r != -ENOENT)
			return r;
		db_ws_row_free(&w);
		err_clear(err);
		if ((r = hold(j, wake_fd, say, arg, &w)) < 0)
			return r;
		wj->held = true;
		if (w.base_image) {
			r = err_set(err, 409, "workspace \"%s\" is a base image (read-only); use --from %s", w.name, w.name);
			goto out;
		}
		wj->persistent = w.persistent;
		wj->base_image = j->base_image;
		if (w.parent)
			from = w.parent; /* a child keeps its bases */
		wj->disk = ws_disk_path(j->user_id, j->workspace);
		r = ensure_disk(j->user_id, j->workspace, wj->disk, say, arg, err);
		if (r == -ENOENT) {
			err_clear(err);
			r = new_disk(wj->disk, err);
		}
		if (r < 0)
			goto out;
	} else {
		/* a local workspace: the sandbox's own blank disk (ws_adopt_disk), unless bases go below it */
		wj->disk_local = true;
		if (from && (r = ws_local_disk(wj, err)) < 0)
			goto out;
	}
	if (from) {
		char *names[ENGINE_LAYER_SLOTS];
		int n = base_chain(j->user_id, from, names, err);
		if (n < 0) {
			r = n;
			goto out;
		}
		for (int i = 0; i < n; i++) {
			wj->layers[wj->nlayers] = ws_disk_path(j->user_id, names[i]);
			if (r == 0 && (r = ensure_disk(j->user_id, names[i], wj->layers[wj->nlayers], say, arg, err)) == -ENOENT)
				r = err_set(err, 404, "base image \"%s\" has no disk on this host and none in the store", names[i]);
			wj->nlayers++;
			free(names[i]);
		}
	}
out:
	db_ws_row_free(&w);
	return r;
}

bool ws_disks(const struct ws_job *wj, struct vm_disks *d)
{
	memset(d, 0, sizeof *d);
	if (wj->ephemeral || !wj->disk)
		return false;
	d->workspace = wj->disk;
	for (int i = 0; i < wj->nlayers; i++)
		d->layers[i] = wj->layers[i];
	return true;
}

int ws_local_disk(struct ws_job *wj, struct err *err)
{
	free(wj->disk);
	wj->disk = xasprintf("%s/local/%s.img", W.root, wj->job_id);
	wj->disk_local = true;
	return new_disk(wj->disk, err);
}

void ws_adopt_disk(struct ws_job *wj, char *path)
{
	free(wj->disk);
	wj->disk = path;
	wj->disk_local = true;
}

char *ws_new_pool_disk(struct err *err)
{
	static unsigned long n;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&mu);
	unsigned long k = ++n;
	pthread_mutex_unlock(&mu);
	char *path = xasprintf("%s/local/pool-%d-%lu.img", W.root, (int)getpid(), k);
	if (new_disk(path, err) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

json_t *ws_stats_json(const char *name, const struct wsync_stats *st)
{
	json_t *o = json_object();
	json_object_set_new(o, "workspace", json_string(name));
	json_object_set_new(o, "version", json_integer((json_int_t)st->version));
	json_object_set_new(o, "chunks", json_integer((json_int_t)st->data_chunks));
	json_object_set_new(o, "uploaded_chunks", json_integer((json_int_t)st->uploaded_chunks));
	json_object_set_new(o, "uploaded_bytes", json_integer((json_int_t)st->uploaded_bytes));
	json_object_set_new(o, "ms", json_integer(st->ms));
	return o;
}

int ws_push(int64_t user_id, const char *name, struct wsync_stats *st, struct err *err)
{
	struct ws_row w;
	if (db_ws_get(user_id, name, &w) < 0)
		return err_set(err, 404, "no workspace named \"%s\"", name);
	char *disk = ws_disk_path(user_id, name);
	int r = 0;
	if (access(disk, F_OK) != 0) {
		r = err_set(err, 409, "workspace \"%s\" has no disk on this host yet (its first job has not run)", name);
		goto out;
	}
	json_t *meta = json_pack("{s:b,s:b,s:o}", "persistent", 1, "base_image", w.base_image, "parent",
				 w.parent ? json_string(w.parent) : json_null());
	char *sname = store_name(user_id, name);
	memset(st, 0, sizeof *st);
	r = wsync_push(W.store, sname, disk, meta, st, err);
	free(sname);
	json_decref(meta);
	if (r == 0) {
		db_ws_set_flags(user_id, name, true, false);
		db_ws_synced(user_id, name, (int64_t)st->version);
		log_info("workspace %s of user %lld: pushed version %llu (%llu of %llu chunks, %llu bytes) in %lld ms", name,
			 (long long)user_id, (unsigned long long)st->version, (unsigned long long)st->uploaded_chunks,
			 (unsigned long long)st->data_chunks, (unsigned long long)st->uploaded_bytes, (long long)st->ms);
	}
out:
	free(disk);
	db_ws_row_free(&w);
	return r;
}

int ws_finish(struct ws_job *wj, bool job_ok, ws_say_fn say, void *arg, struct err *err)
{
	int r = 0;
	if (wj->disk_local && wj->disk)
		unlink(wj->disk);
	if (wj->held) {
		if (wj->base_image && job_ok) {
			/* replays the journal if the guest could not unmount cleanly: a base is mounted with noload */
			const char *argv[] = { "e2fsck", "-p", wj->disk, NULL };
			int e = proc_run_quiet(argv);
			if (e < 0 || e >= 4) {
				r = err_set(err, EIO, "workspace %s: e2fsck failed (exit %d); not made a base image", wj->name, e);
				say(arg, err->msg);
				say(arg, "\n");
			} else {
				db_ws_set_flags(wj->user_id, wj->name, false, true);
				char *line = xasprintf("workspace %s is now a base image (read-only): start others with --from %s\n",
						       wj->name, wj->name);
				say(arg, line);
				free(line);
			}
		} else if (wj->base_image) {
			char *line = xasprintf("the script failed, so workspace %s was not made a base image\n", wj->name);
			say(arg, line);
			free(line);
		}
		struct ws_row w;
		bool push = db_ws_get(wj->user_id, wj->name, &w) == 0 && (w.persistent || w.base_image);
		db_ws_row_free(&w);
		if (push && r == 0) {
			struct wsync_stats st;
			r = ws_push(wj->user_id, wj->name, &st, err);
			char *line = r == 0 ? xasprintf("synced workspace %s to the store: version %llu, %llu of %llu chunks"
							" uploaded (%llu bytes) in %lld ms\n", wj->name,
							(unsigned long long)st.version, (unsigned long long)st.uploaded_chunks,
							(unsigned long long)st.data_chunks, (unsigned long long)st.uploaded_bytes,
							(long long)st.ms)
					    : xasprintf("sync of workspace %s failed: %s (the disk stays on this host)\n",
							wj->name, err->msg);
			say(arg, line);
			free(line);
		}
		db_ws_release(wj->user_id, wj->name, wj->job_id);
		wj->held = false;
	}
	return r;
}

void ws_job_free(struct ws_job *wj)
{
	free(wj->name);
	free(wj->disk);
	for (int i = 0; i < wj->nlayers; i++)
		free(wj->layers[i]);
	memset(wj, 0, sizeof *wj);
}

int ws_delete(int64_t user_id, const char *name, struct err *err)
{
	struct ws_row w;
	int r = ws_lookup(user_id, name, &w, err);
	if (r == -ENOENT)
		return err_set(err, 404, "no workspace named \"%s\"", name);
	if (r < 0)
		return r;
	db_ws_row_free(&w);
	char *holder = NULL, *child = NULL;
	/* a job that has ended lets go of its workspace once its VM is down: wait for that */
	for (int i = 0; (r = db_ws_delete(user_id, name, &holder, &child)) == -EBUSY && i < WS_RELEASE_WAIT_MS / 100; i++) {
		struct job_row j;
		bool ended = false;
		if (db_job_get(holder, 0, &j) == 0) {
			ended = !strcmp(j.status, "completed") || !strcmp(j.status, "failed");
			db_job_row_free(&j);
		}
		if (!ended)
			break;
		free(holder);
		free(child);
		holder = child = NULL;
		usleep(100000);
	}
	if (r == -ENOENT)
		r = err_set(err, 404, "no workspace named \"%s\"", name);
	else if (r == -EBUSY)
		r = err_set(err, 409, "workspace \"%s\" is in use by job %s; stop it first", name, holder);
	else if (r == -EEXIST)
		r = err_set(err, 409, "workspace \"%s\" is the base of workspace \"%s\"; delete that first", name, child);
	free(holder);
	free(child);
	if (r < 0)
		return r;
	char *disk = ws_disk_path(user_id, name);
	unlink(disk);
	free(disk);
	char *sname = store_name(user_id, name);
	r = wsync_delete(W.store, sname, err);
	free(sname);
	if (r == -ENOENT) {
		err_clear(err);
		r = 0;
	}
	return r < 0 ? err_wrap(err, "workspace \"%s\" was deleted on this host, but not in the store", name) : 0;
}

json_t *ws_json(const struct ws_row *w)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(w->name));
	json_object_set_new(o, "persistent", json_boolean(w->persistent));
	json_object_set_new(o, "base_image", json_boolean(w->base_image));
	json_object_set_new(o, "from", w->parent ? json_string(w->parent) : json_null());
	json_object_set_new(o, "in_use_by", w->in_use_by ? json_string(w->in_use_by) : json_null());
	char *disk = ws_disk_path(w->user_id, w->name);
	struct stat st;
	bool here = stat(disk, &st) == 0;
	free(disk);
	json_object_set_new(o, "size_bytes", json_integer(here ? (json_int_t)st.st_blocks * 512 : 0));
	json_object_set_new(o, "on_host", json_boolean(here));
	json_object_set_new(o, "version", w->version ? json_integer(w->version) : json_null());
	json_object_set_new(o, "synced_at", db_time_json(w->synced_at));
	json_object_set_new(o, "created_at", db_time_json(w->created_at));
	json_object_set_new(o, "updated_at", db_time_json(w->updated_at));
	return o;
}
