// SPDX-License-Identifier: MIT
/* Template snapshots and the restore pool; see fast.h. */
#include "fast.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base64.h"
#include "fs.h"
#include "log.h"
#include "xmalloc.h"

#define TEMPLATE_BOOT_MS 120000	/* template VM start -> HELLO */
#define TEMPLATE_WARM_MS 60000	/* the warm-up command */
#define TEMPLATE_RETRY_MS 30000	/* after a failed build */
#define POOL_RETRY_MS 1000	/* after a pool QEMU failed to start */
#define POOL_FAILS_MAX 3	/* in a row: the template is dropped and rebuilt */
/*
 * A QEMU starting up takes a core for tens to hundreds of milliseconds; done
 * right after a take it would compete with the sandbox just restored, whose
 * first milliseconds are the ones a user waits for.
 */
#define POOL_REFILL_DELAY_MS 500
#define AGENT_CONNECT_MS 10000
#define DIGEST_BLOCK 65536
#define BUILD_STALE_S 3600	/* another builder's leftovers older than this go */
/*
 * Run once before the snapshot, so every restored sandbox finds the shell
 * and a few common programs already in its page cache and the agent's exec
 * path already touched.
 */
#define WARM_CMD "echo warm >/dev/null; cat /dev/null; uname >/dev/null"

enum tstate {
	T_NONE,		/* none yet: the thread checks or builds one */
	T_BUILDING,
	T_READY,
	T_FAILED,	/* build failed; retried at retry_at */
};

static const char *const tstate_name[] = { "building", "building", "ready", "failed" };

/* A pooled VM: waiting for its restore, or (warm pool) restored and warmed up. */
struct pooled {
	struct vm *vm;		/* waiting on -incoming defer */
	struct sandbox *sb;	/* warm pool: running, agent idle, INIT not sent, disk mounted */
	char *disk;		/* its own blank workspace disk (owned, removed with it) */
};

struct fast {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fast_config cfg;
	pthread_t thread;
	bool running, stop;
	enum tstate state;
	unsigned gen;		/* generation of the ready template */
	char key[65];
	char *dir;		/* of the ready template */
	void *pin;		/* its RAM file mapped, data extents mlocked */
	size_t pin_len;
	struct pooled *pool;
	int npool;
	char want[65];		/* the key this instance uses or builds (under R.mu) */
	int64_t last_take;	/* refills wait POOL_REFILL_DELAY_MS after a take */
	int64_t retry_at;
	bool wanted;		/* lazy: a take asked for the template (build it) */
	int pool_fails;		/* pooled VMs that failed to start in a row */
	struct fast *next;	/* all instances (R.list) */
};

/*
 * Every instance, for template_cleanup: a template another instance (image)
 * uses or builds is not "old". want is the key each is after.
 */
static struct {
	pthread_mutex_t mu;
	struct fast *list;
	unsigned seq;		/* names of run dirs, unique across instances */
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *unique_path(const char *root, const char *prefix)
{
	pthread_mutex_lock(&R.mu);
	unsigned n = ++R.seq;
	pthread_mutex_unlock(&R.mu);
	return xasprintf("%s/%s-%d-%u", root, prefix, (int)getpid(), n);
}

/*
 * SHA-256 of a file's content, or of its non-zero DIGEST_BLOCK blocks with
 * their offsets when sparse (the RAM file: zero blocks and holes hash alike,
 * so a copy that keeps or fills holes has the same digest).
 */
static int file_digest(const char *path, bool sparse, char out[65], off_t *size, struct err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = err_set(err, errno, "stat %s", path);
		close(fd);
		return r;
	}
	*size = st.st_size;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	static const unsigned char zero[DIGEST_BLOCK];
	unsigned char *blk = xmalloc(DIGEST_BLOCK);
	int r = 0;
	off_t off = 0;
	while (off < st.st_size) {
		if (sparse) {
			off_t data = lseek(fd, off, SEEK_DATA);
			if (data < 0)
				break; /* ENXIO: only a hole is left */
			off = data - data % DIGEST_BLOCK;
		}
		ssize_t n = pread(fd, blk, DIGEST_BLOCK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(err, errno, "read %s", path);
			break;
		}
		if (n == 0)
			break;
		if (!sparse) {
			EVP_DigestUpdate(c, blk, (size_t)n);
		} else if (memcmp(blk, zero, (size_t)n) != 0) {
			unsigned long long at = (unsigned long long)off;
			EVP_DigestUpdate(c, &at, sizeof at);
			EVP_DigestUpdate(c, blk, (size_t)n);
		}
		off += n;
	}
	unsigned char h[32];
	EVP_DigestFinal_ex(c, h, NULL);
	EVP_MD_CTX_free(c);
	free(blk);
	close(fd);
	if (r == 0)
		hex_encode(h, sizeof h, out);
	return r;
}

/* Looks up "name value" in meta text; copies value (up to the line end). */
static bool meta_get(const char *meta, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	for (const char *l = meta; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name, nl) != 0 || l[nl] != ' ')
			continue;
		const char *v = l + nl + 1, *e = strchr(v, '\n');
		size_t n = e ? (size_t)(e - v) : strlen(v);
		if (n >= outlen)
			return false;
		memcpy(out, v, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

/* Checks a template directory against its meta file. */
static int template_check(const char *dir, const char *key, struct err *err)
{
	char *path = xasprintf("%s/meta", dir), *meta = NULL;
	int r = fs_read_file(path, 4096, &meta, NULL, err);
	free(path);
	if (r < 0)
		return r;
	char want_key[80], mem_digest[80], state_digest[80], mem_size[32], got[65];
	if (!meta_get(meta, "key", want_key, sizeof want_key) || !meta_get(meta, "mem_digest", mem_digest, sizeof mem_digest) ||
	    !meta_get(meta, "state_digest", state_digest, sizeof state_digest) ||
	    !meta_get(meta, "mem_size", mem_size, sizeof mem_size)) {
		free(meta);
		return err_set(err, EINVAL, "meta file incomplete");
	}
	free(meta);
	if (strcmp(want_key, key) != 0)
		return err_set(err, EINVAL, "made for other inputs");
	off_t size;
	path = xasprintf("%s/state", dir);
	r = file_digest(path, false, got, &size, err);
	free(path);
	if (r < 0)
		return r;
	if (strcmp(got, state_digest) != 0)
		return err_set(err, EINVAL, "device state does not match its digest (corrupt)");
	path = xasprintf("%s/mem", dir);
	r = file_digest(path, true, got, &size, err);
	free(path);
	if (r < 0)
		return r;
	if ((long long)size != atoll(mem_size))
		return err_set(err, EINVAL, "memory file is %lld bytes, not %s", (long long)size, mem_size);
	if (strcmp(got, mem_digest) != 0)
		return err_set(err, EINVAL, "memory file does not match its digest (corrupt)");
	return 0;
}

/* Boots a template VM into dir (which exists and is empty) and saves it there. */
static int template_build(struct fast *f, const char *dir, const char *key, struct err *err)
{
	const struct engine *eng = f->cfg.engine;
	int64_t t0 = mono_ms();
	char *mem_path = xasprintf("%s/mem", dir), *state_path = xasprintf("%s/state", dir);
	char *rundir = unique_path(f->cfg.run_root, "template");
	struct vm_mem mem = { .mem_path = mem_path, .incoming = false };
	struct sandbox *sb = NULL;
	int r = sandbox_boot(eng, rundir, &mem, NULL, TEMPLATE_BOOT_MS, -1, &sb, err);
	int64_t boot_ms = mono_ms() - t0;
	if (r == 0) {
		r = sandbox_run_quiet(sb, 1, WARM_CMD, TEMPLATE_WARM_MS, err);
		if (r > 0)
			r = err_set(err, EIO, "warm-up command exited %d", r);
	}
	if (r == 0)
		r = vm_snapshot(sb->vm, state_path, err);
	if (sb) {
		vm_kill(sb->vm); /* paused: no poweroff; its RAM is in the file */
		sandbox_free(sb);
	}
	char mem_digest[65], state_digest[65];
	off_t mem_size = 0, state_size = 0;
	if (r == 0) {
		int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			r = err_set(err, errno, "sync %s", mem_path);
		if (fd >= 0)
			close(fd);
	}
	if (r == 0)
		r = file_digest(mem_path, true, mem_digest, &mem_size, err);
	if (r == 0)
		r = file_digest(state_path, false, state_digest, &state_size, err);
	if (r == 0) {
		char *meta = xasprintf("key %s\nmem_size %lld\nmem_digest %s\nstate_size %lld\nstate_digest %s\n"
				       "boot_ms %lld\nbuild_ms %lld\n",
				       key, (long long)mem_size, mem_digest, (long long)state_size, state_digest,
				       (long long)boot_ms, (long long)(mono_ms() - t0));
		char *meta_path = xasprintf("%s/meta", dir);
		r = fs_write_file(meta_path, meta, strlen(meta), 0600, err);
		free(meta_path);
		free(meta);
	}
	free(rundir);
	free(mem_path);
	free(state_path);
	return r;
}

/* True when some instance uses or builds the template named key. */
static bool key_wanted(const char *key)
{
	bool yes = false;
	pthread_mutex_lock(&R.mu);
	for (struct fast *i = R.list; i && !yes; i = i->next)
		yes = !strcmp(i->want, key);
	pthread_mutex_unlock(&R.mu);
	return yes;
}

static void set_want(struct fast *f, const char *key)
{
	pthread_mutex_lock(&R.mu);
	memcpy(f->want, key, sizeof f->want);
	pthread_mutex_unlock(&R.mu);
}

/*
 * Removes templates no instance wants (other kernels, images that changed)
 * and stale half-built ones.
 */
static void template_cleanup(struct fast *f)
{
	DIR *d = opendir(f->cfg.template_root);
	if (!d)
		return;
	struct dirent *de;
	time_t now = time(NULL);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || key_wanted(de->d_name))
			continue;
		char *p = xasprintf("%s/%s", f->cfg.template_root, de->d_name);
		struct stat st;
		bool old = stat(p, &st) == 0 && now - st.st_mtime > BUILD_STALE_S;
		/* another magsd may be building one right now: leave fresh ones */
		if (de->d_name[0] != '.' || old) {
			log_info("removing old template %s", de->d_name);
			fs_rm_tree(p);
		}
		free(p);
	}
	closedir(d);
}

/* Removes dir without racing a reader into a half-deleted tree. */
static void template_remove(struct fast *f, const char *dir)
{
	char *trash = unique_path(f->cfg.template_root, ".trash");
	if (rename(dir, trash) == 0)
		fs_rm_tree(trash);
	free(trash);
}

/*
 * True when template_root/key holds a template whose digests match (other
 * keys' templates are then deleted). One that exists but does not match is
 * removed here, so it is checked once and then rebuilt.
 */
static bool template_usable(struct fast *f, const char *key)
{
	char *dir = xasprintf("%s/%s", f->cfg.template_root, key);
	struct err err = { 0 };
	bool ok = template_check(dir, key, &err) == 0;
	if (ok) {
		log_info("image %s: template %.12s: checked, ready", f->cfg.name, key);
		template_cleanup(f);
	} else if (access(dir, F_OK) == 0) {
		log_warn("image %s: template %.12s is unusable (%s); building a new one", f->cfg.name, key, err.msg);
		template_remove(f, dir);
	}
	free(dir);
	return ok;
}

/* Makes sure a valid template for key exists in template_root/key. */
static int template_prepare(struct fast *f, const char *key, struct err *err)
{
	if (template_usable(f, key))
		return 0;
	char *dir = xasprintf("%s/%s", f->cfg.template_root, key);
	int r;
	char *tmp = unique_path(f->cfg.template_root, ".build");
	if (fs_mkdir_p(f->cfg.template_root, 0700) < 0 || mkdir(tmp, 0700) < 0) {
		r = err_set(err, errno, "create %s", tmp);
		free(tmp);
		goto done;
	}
	int64_t t0 = mono_ms();
	r = template_build(f, tmp, key, err);
	if (r == 0 && rename(tmp, dir) < 0) {
		/* another magsd sharing the directory finished first: use its copy */
		r = (errno == EEXIST || errno == ENOTEMPTY) ? template_check(dir, key, err) : err_set(err, errno, "rename %s", tmp);
	} else if (r == 0) {
		log_info("image %s: template %.12s: built in %lld ms", f->cfg.name, key, (long long)(mono_ms() - t0));
	}
	fs_rm_tree(tmp);
	free(tmp);
done:
	if (r == 0)
		template_cleanup(f);
	free(dir);
	return r;
}

/*
 * Starts a QEMU ready to restore the template in dir: its RAM mapped from
 * the template's, the device state handed over, the agent channel connected.
 */
static int pool_vm_start(struct fast *f, const char *dir, const struct vm_disks *disks, struct vm **out, struct err *err)
{
	char *rundir = unique_path(f->cfg.run_root, "pool");
	char *mem_path = xasprintf("%s/mem", dir), *state_path = xasprintf("%s/state", dir);
	struct vm_mem mem = { .mem_path = mem_path, .incoming = true };
	int r = vm_start(f->cfg.engine, rundir, &mem, disks, out, err);
	free(rundir);
	free(mem_path);
	if (r < 0) {
		free(state_path);
		return r;
	}
	r = vm_restore_prepare(*out, state_path, err);
	free(state_path);
	if (r == 0)
		r = vm_connect_agent(*out, AGENT_CONNECT_MS, err);
	if (r < 0) {
		vm_free(*out);
		*out = NULL;
	}
	return r;
}

/*
 * Keeps the template's RAM in the page cache: every restore maps its pages
 * from there, and one the kernel evicted costs a disk read while a user
 * waits. (The development machines run proactive reclaim: DAMON paged out
 * 6 of a template's 56 MiB within 20 s.) Only data extents are locked, the
 * file being sparse. Failure (RLIMIT_MEMLOCK when not root) costs speed only.
 */
static void pin_template(struct fast *f, const char *dir)
{
	char *path = xasprintf("%s/mem", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
		log_warn("image %s: template: cannot keep %s in memory: %s", f->cfg.name, path, strerror(errno));
		goto out;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		log_warn("image %s: template: mmap %s: %s", f->cfg.name, path, strerror(errno));
		goto out;
	}
	f->pin = m;
	f->pin_len = (size_t)st.st_size;
	size_t locked = 0;
	for (off_t off = 0; off < st.st_size;) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		if (mlock((char *)m + data, (size_t)(hole - data)) < 0) {
			log_warn("image %s: template: mlock: %s (restores may wait for disk reads)", f->cfg.name, strerror(errno));
			break;
		}
		locked += (size_t)(hole - data);
		off = hole;
	}
	log_info("image %s: template: %zu MiB of guest RAM kept resident", f->cfg.name, locked >> 20);
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

static void unpin_template(struct fast *f)
{
	if (f->pin)
		munmap(f->pin, f->pin_len); /* unlocks too */
	f->pin = NULL;
	f->pin_len = 0;
}

/* Drops the ready template (under mu); its pooled VMs are moved to *dead. */
static void drop_locked(struct fast *f, struct pooled **dead, int *ndead)
{
	*dead = f->pool;
	*ndead = f->npool;
	f->pool = NULL;
	f->npool = 0;
	f->state = T_NONE;
	free(f->dir);
	f->dir = NULL;
	unpin_template(f);
	pthread_cond_broadcast(&f->cv);
}

static void pooled_free(struct pooled *p)
{
	if (p->sb) {
		vm_kill(p->sb->vm); /* nothing to save: no poweroff handshake */
		sandbox_free(p->sb);
	} else {
		vm_free(p->vm);
	}
	if (p->disk)
		unlink(p->disk);
	free(p->disk);
	p->sb = NULL;
	p->vm = NULL;
	p->disk = NULL;
}

static void free_pooled(struct pooled *p, int n)
{
	for (int i = 0; i < n; i++)
		pooled_free(&p[i]);
	free(p);
}

/*
 * Warm pool: restores a pooled VM now and runs the warm-up command in it,
 * so the first exec of the job that takes it does not pay for translating
 * the guest's fork/exec paths (TCG starts every process with an empty
 * translation cache). Identity still comes with INIT at take time.
 */
static int pool_warm_up(struct fast *f, struct vm *vm, struct sandbox **out, struct err *err)
{
	int r = vm_restore(vm, err);
	if (r < 0) {
		vm_free(vm);
		return r;
	}
	struct sandbox *sb = sandbox_wrap(vm);
	r = sandbox_run_quiet(sb, 1, WARM_CMD, TEMPLATE_WARM_MS, err);
	if (r > 0)
		r = err_set(err, EIO, "warm-up command exited %d", r);
	/* mounting is slow under TCG (ext4 and overlayfs code run for the first time): do it now */
	if (r == 0)
		r = sandbox_mount(sb, 0, TEMPLATE_WARM_MS, -1, err);
	if (r != 0) {
		sandbox_free(sb);
		return r;
	}
	*out = sb;
	return 0;
}

static void set_ready_locked(struct fast *f, const char *key)
{
	f->gen++;
	memcpy(f->key, key, sizeof f->key);
	f->dir = xasprintf("%s/%s", f->cfg.template_root, key);
	pin_template(f, f->dir);
	f->state = T_READY;
}

static void *fast_main(void *arg)
{
	struct fast *f = arg;
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		if (f->state == T_NONE && (!f->cfg.lazy || f->wanted)) {
			f->state = T_BUILDING;
			char key[65];
			engine_snapshot_key(f->cfg.engine, key);
			set_want(f, key);
			pthread_mutex_unlock(&f->mu);
			struct err err = { 0 };
			int r = template_prepare(f, key, &err);
			pthread_mutex_lock(&f->mu);
			if (r == 0) {
				set_ready_locked(f, key);
			} else {
				log_warn("image %s: template: %s; jobs cold boot, retrying in %d s", f->cfg.name, err.msg, TEMPLATE_RETRY_MS / 1000);
				f->state = T_FAILED;
				f->retry_at = mono_ms() + TEMPLATE_RETRY_MS;
			}
			continue;
		}
		if (f->state == T_FAILED && mono_ms() >= f->retry_at) {
			f->state = T_NONE;
			continue;
		}
		int64_t refill_in = f->last_take + POOL_REFILL_DELAY_MS - mono_ms();
		if (f->state == T_READY && f->npool < f->cfg.pool_size && refill_in <= 0) {
			unsigned gen = f->gen;
			char *dir = xstrdup(f->dir);
			pthread_mutex_unlock(&f->mu);
			struct pooled p = { 0 };
			struct err err = { 0 };
			p.disk = f->cfg.new_disk(&err);
			int r = p.disk ? 0 : -EIO;
			if (r == 0) {
				struct vm_disks d = { .workspace = p.disk };
				r = pool_vm_start(f, dir, &d, &p.vm, &err);
			}
			free(dir);
			bool warm_failed = false;
			if (r == 0 && f->cfg.pool_warm) {
				r = pool_warm_up(f, p.vm, &p.sb, &err);
				p.vm = NULL;
				warm_failed = r < 0;
			}
			pthread_mutex_lock(&f->mu);
			if (r == 0 && gen == f->gen && f->state == T_READY && !f->stop) {
				f->pool = xrealloc(f->pool, (size_t)(f->npool + 1) * sizeof *f->pool);
				f->pool[f->npool++] = p;
				f->pool_fails = 0;
				continue;
			}
			/* pooled VMs that keep failing to start (say the RAM file cannot be opened): a new template */
			bool give_up = r < 0 && ++f->pool_fails >= POOL_FAILS_MAX;
			pthread_mutex_unlock(&f->mu);
			pooled_free(&p);
			if (warm_failed || give_up) {
				fast_invalidate(f, gen, err.msg); /* the restore itself failed */
				pthread_mutex_lock(&f->mu);
				f->pool_fails = 0;
				pthread_mutex_unlock(&f->mu);
			}
			pthread_mutex_lock(&f->mu);
			if (r < 0) {
				log_warn("image %s: restore pool: %s", f->cfg.name, err.msg);
			} else {
				continue;
			}
		}
		/* wait for a take, a drop, a stop or the retry time */
		int64_t wait_ms = f->state == T_FAILED ? f->retry_at - mono_ms() : f->state == T_NONE ? 60000 : POOL_RETRY_MS;
		if (f->state == T_READY && f->npool < f->cfg.pool_size && refill_in > 0 && refill_in < wait_ms)
			wait_ms = refill_in;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	struct pooled *dead;
	int ndead;
	drop_locked(f, &dead, &ndead);
	pthread_mutex_unlock(&f->mu);
	free_pooled(dead, ndead);
	return NULL;
}

struct fast *fast_start(const struct fast_config *cfg, struct err *err)
{
	if (fs_mkdir_p(cfg->template_root, 0700) < 0) {
		err_set(err, errno, "create %s", cfg->template_root);
		return NULL;
	}
	struct fast *f = xcalloc(1, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->cfg = *cfg;
	f->state = T_NONE;
	char key[65];
	engine_snapshot_key(cfg->engine, key);
	pthread_mutex_lock(&R.mu);
	memcpy(f->want, key, sizeof f->want);
	f->next = R.list;
	R.list = f;
	pthread_mutex_unlock(&R.mu);
	/* a template already on disk is checked now, so the first job can use it */
	if (template_usable(f, key))
		set_ready_locked(f, key);
	int e = pthread_create(&f->thread, NULL, fast_main, f);
	if (e) {
		err_set(err, e, "start the template thread");
		fast_stop(f);
		return NULL;
	}
	f->running = true;
	return f;
}

void fast_stop(struct fast *f)
{
	if (!f)
		return;
	if (f->running) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
		f->running = false;
	} else {
		unpin_template(f);
		free(f->dir);
	}
	pthread_mutex_lock(&R.mu);
	for (struct fast **p = &R.list; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&R.mu);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

void fast_invalidate(struct fast *f, unsigned gen, const char *why)
{
	struct pooled *dead = NULL;
	int ndead = 0;
	char *dir = NULL;
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	if (f->running && gen == f->gen && f->state == T_READY) {
		log_warn("image %s: template %.12s dropped: %s; rebuilding (jobs cold boot meanwhile)", f->cfg.name, f->key, why);
		dir = xstrdup(f->dir);
		drop_locked(f, &dead, &ndead);
	}
	pthread_mutex_unlock(&f->mu);
	free_pooled(dead, ndead);
	if (dir)
		template_remove(f, dir);
	free(dir);
}

int fast_take(struct fast *f, const char *rundir, const struct vm_disks *disks, struct sandbox **out,
	      char **own_disk, struct err *err)
{
	*out = NULL;
	*own_disk = NULL;
	/* running only changes before the first job and after the last one */
	if (!f || !f->running)
		return -ENOENT;
	char key[65]; /* stats and hashes: done outside the lock */
	engine_snapshot_key(f->cfg.engine, key);
	pthread_mutex_lock(&f->mu);
	if (f->state != T_READY) {
		if (!f->wanted) {
			f->wanted = true; /* lazy: the first job that asks starts the build */
			pthread_cond_broadcast(&f->cv);
		}
		pthread_mutex_unlock(&f->mu);
		return -ENOENT;
	}
	unsigned gen = f->gen;
	if (strcmp(key, f->key) != 0) {
		pthread_mutex_unlock(&f->mu);
		fast_invalidate(f, gen, "the kernel, image or QEMU changed");
		return -ENOENT;
	}
	/* a job with its own disks needs a VM that has not mounted its blank one */
	struct pooled p = { 0 };
	for (int i = f->npool - 1; i >= 0; i--) {
		if (disks && f->pool[i].sb)
			continue;
		p = f->pool[i];
		f->pool[i] = f->pool[--f->npool];
		break;
	}
	char *dir = xstrdup(f->dir);
	f->last_take = mono_ms();
	pthread_cond_broadcast(&f->cv); /* refill, after POOL_REFILL_DELAY_MS */
	pthread_mutex_unlock(&f->mu);

	int64_t t0 = mono_ms();
	int r = 0;
	if (p.sb) { /* warm pool: restored, its blank disk mounted */
		free(dir);
		if ((r = vm_rename(p.sb->vm, rundir, err)) < 0) {
			pooled_free(&p);
			return r;
		}
		p.sb->snap_gen = gen;
		p.sb->boot_ms = mono_ms() - t0;
		*out = p.sb;
		*own_disk = p.disk;
		return 0;
	}
	if (p.vm && disks && (r = vm_set_disks(p.vm, disks, err)) < 0) {
		log_warn("image %s: fast start: cannot swap a pooled VM's disks (%s); starting one with them", f->cfg.name, err->msg);
		err_clear(err);
		pooled_free(&p);
	}
	if (!p.vm) {
		struct vm_disks own = { 0 };
		if (!disks && !(p.disk = f->cfg.new_disk(err))) {
			free(dir);
			return -EIO;
		}
		own.workspace = p.disk;
		r = pool_vm_start(f, dir, disks ? disks : &own, &p.vm, err);
	} else if (disks && p.disk) {
		unlink(p.disk); /* the job's disks replaced it */
		free(p.disk);
		p.disk = NULL;
	}
	free(dir);
	if (r == 0 && (r = vm_rename(p.vm, rundir, err)) == 0 && (r = vm_restore(p.vm, err)) < 0)
		fast_invalidate(f, gen, err->msg);
	if (r < 0) {
		pooled_free(&p);
		return r;
	}
	struct sandbox *sb = sandbox_wrap(p.vm);
	sb->snap_gen = gen;
	sb->boot_ms = mono_ms() - t0;
	*out = sb;
	*own_disk = p.disk;
	return 0;
}

json_t *fast_status(struct fast *f)
{
	if (!f)
		return json_pack("{s:s,s:i,s:i,s:s}", "template", "off", "pool", 0, "pool_size", 0, "pool_mode", "incoming");
	pthread_mutex_lock(&f->mu);
	const char *state = !f->running ? "off" : f->state == T_NONE && f->cfg.lazy && !f->wanted ? "idle"
										: tstate_name[f->state];
	json_t *o = json_pack("{s:s,s:i,s:i,s:s}", "template", state, "pool", f->npool,
			      "pool_size", f->running ? f->cfg.pool_size : 0, "pool_mode",
			      f->cfg.pool_warm ? "warm" : "incoming");
	pthread_mutex_unlock(&f->mu);
	return o;
}
