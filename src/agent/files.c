// SPDX-License-Identifier: MIT
/*
 * The files API of mags-agent (docs/agent-protocol.md, "Files in detail"):
 * FSTAT, FREMOVE and FMKDIR answer at once; FREAD (DATA frames of a file),
 * FLIST (one INFO per entry) and WATCH (inotify EVENT frames) are streaming
 * channels ("fchans") that honour the port's flow control, PAUSE/RESUME and
 * CANCEL, and count against AGENT_CHAN_MAX with the exec channels.
 *
 * Every path resolves in the agent's current root with openat2(2)
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: a symlink anywhere in a path stays
 * inside the guest's root and /proc magic links (/proc/N/root, /proc/N/fd/M)
 * are refused as "EXDEV: path escapes the sandbox". Operations on the last
 * component (lstat, unlink, rmdir, mkdir) open its parent that way and use the
 * *at() call on the final name, so a final symlink is never followed. FILE
 * (ops.c) writes through files_put, under the same rule. Error texts begin
 * with the errno's name ("ENOENT: /root/x: No such file or directory"): the
 * host maps that first token to an HTTP status.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "payload.h"
#include "xmalloc.h"

#define FILES_DEPTH_MAX 256		/* directory levels FREMOVE and WATCH descend */
#define FILES_RM_PASSES 8		/* reads of one directory FREMOVE empties (entries may be added meanwhile) */
#define FILES_MODIFY_MS 50		/* at most one "modify" per path this often */
#define FILES_MODS_MAX 256		/* paths with a recent "modify", per WATCH */
#define FILES_READ_TURN (4 * AGENT_DATA_CHUNK)	/* bytes one FREAD sends per loop turn */
#define FILES_LIST_TURN 1024		/* entries one FLIST sends per loop turn */
#define FILES_WATCH_MASK \
	(IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

enum fchan_kind { FCHAN_READ, FCHAN_LIST, FCHAN_WATCH };

struct wdir {
	int wd;			/* inotify watch descriptor */
	char *path;		/* the directory's normalized path (owned) */
};

struct wmod {
	char *path;		/* owned */
	int64_t sent;		/* ms of the last "modify" sent for it */
	bool pending;		/* another came since: send it when FILES_MODIFY_MS passed */
};

/* A streaming file channel. */
struct fchan {
	struct fchan *next;
	uint32_t id;
	enum fchan_kind kind;
	bool held;		/* PAUSE */
	int fd;			/* READ: the file; LIST: the directory; WATCH: the inotify fd */
	uint64_t off;		/* READ: next byte to send */
	char *path;		/* LIST, WATCH: the directory's normalized path (owned) */
	char **names;		/* LIST: entries, sorted (owned) */
	size_t nnames, next_name;
	bool polled;		/* WATCH: fd is in epoll */
	bool recursive;		/* WATCH: subdirectories too */
	int top_wd;		/* WATCH: the watched directory's wd */
	struct wdir *dirs;	/* WATCH: every watched directory */
	size_t ndirs, cap;
	struct wmod mods[FILES_MODS_MAX];	/* WATCH: modify coalescing */
	size_t nmods;
	char *moved;		/* WATCH: a directory's move_from whose move_to has not come yet (owned) */
	uint32_t moved_cookie;	/* ... its inotify cookie */
	int64_t moved_at;	/* ... when it came */
	uint32_t tmp_cookie;	/* WATCH: the move_from of the agent's own temporary file (a FILE write) */
};

const char *files_errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "EIO";
}

char *files_abspath(const uint8_t *p, size_t n)
{
	return p[0] == '/' ? xstrndup((const char *)p, n) : xasprintf("/root/%.*s", (int)n, (const char *)p);
}

/* ---- resolution in the root ------------------------------------------------------ */

static int openat2_in_root(int root, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
	int fd;
	/* EAGAIN: a rename or mount raced with a scoped lookup; try again */
	for (int i = 0; i < 16; i++) {
		fd = (int)syscall(SYS_openat2, root, path, &how, sizeof how);
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd;
}

/*
 * Opens path (absolute) in the agent's root, following symlinks inside it.
 * Returns an fd or -errno: -EXDEV when a magic link was on the way.
 */
static int res_open(const char *path, int flags)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	int fd = openat2_in_root(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), e = errno;
	if (fd < 0 && e == ELOOP) {
		/*
		 * A magic link or a symlink loop? Without NO_MAGICLINKS a scoped
		 * lookup still refuses a magic link, but with EXDEV (fs/namei.c
		 * nd_jump_link): a loop stays ELOOP.
		 */
		int f2 = openat2_in_root(root, path, flags & ~O_CREAT, RESOLVE_IN_ROOT);
		if (f2 >= 0 || errno == EXDEV)
			e = EXDEV;
		if (f2 >= 0)
			close(f2);
	}
	close(root);
	return fd >= 0 ? fd : -e;
}

/*
 * Opens the parent directory of path (absolute, not "/") as O_PATH and points
 * *name at path's last component. Returns the fd or -errno.
 */
static int res_parent(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	if (slash == path)
		return res_open("/", O_PATH | O_DIRECTORY);
	char *dir = xstrndup(path, (size_t)(slash - path));
	int fd = res_open(dir, O_PATH | O_DIRECTORY);
	free(dir);
	return fd;
}

/*
 * mkdir -p of dir (absolute) inside the root, new directories 0755. Returns
 * an O_PATH fd of it or -errno.
 */
static int res_mkdirs(const char *dir)
{
	int fd = res_open(dir, O_PATH | O_DIRECTORY);
	if (fd != -ENOENT)
		return fd;
	int cur = res_open("/", O_PATH | O_DIRECTORY);
	char *p = xstrdup(dir);
	for (char *s = p + 1; cur >= 0 && *s;) {
		char *end = strchr(s, '/');
		if (end)
			*end = 0;
		fd = res_open(p, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT) {
			/* created in the directory the lookup reached: never outside the root */
			if (mkdirat(cur, s, 0755) < 0 && errno != EEXIST)
				fd = -errno;
			else
				fd = res_open(p, O_PATH | O_DIRECTORY);
		}
		close(cur);
		cur = fd;
		if (!end)
			break;
		*end = '/';
		s = end + 1;
	}
	free(p);
	return cur;
}

/* True when fd (or name in it) is the root of a mount: FREMOVE and WATCH stay on one. */
static bool is_mount_root(int dirfd, const char *name)
{
	struct statx stx;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH), STATX_TYPE, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* ERROR "ENAME: path: text" (or the escape's own text) on chan. */
static void fail(struct agent *a, uint32_t chan, int e, const char *path)
{
	if (e == EXDEV)
		agent_send_error(a, chan, "EXDEV: path escapes the sandbox: %s", path);
	else
		agent_send_error(a, chan, "%s: %s: %s", files_errname(e), path, strerror(e));
}

/* ---- FILE ------------------------------------------------------------------------ */

/* Writes all of p to fd at off (pwrite) or at its position (off < 0). Returns 0 or -errno. */
static int write_all(int fd, const uint8_t *p, size_t len, int64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = off < 0 ? write(fd, p + done, len - done) : pwrite(fd, p + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int files_put(const char *path, const uint8_t *data, size_t len, mode_t mode, uint64_t off)
{
	int r = 0;
	if (off) {
		/* a piece of a file written before: it must exist and reach off */
		int fd = res_open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			return fd;
		struct stat st;
		if (fstat(fd, &st) < 0)
			r = -errno;
		else if (!S_ISREG(st.st_mode))
			r = -EINVAL;
		else if ((uint64_t)st.st_size < off)
			r = -ESPIPE;
		if (r == 0)
			r = write_all(fd, data, len, (int64_t)off);
		if (close(fd) < 0 && r == 0)
			r = -errno;
		return r;
	}
	const char *slash = strrchr(path, '/'), *name = slash + 1;
	char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	int dfd = res_mkdirs(dir);
	free(dir);
	if (dfd < 0)
		return dfd;
	static unsigned seq;
	char tmp[64];
	int fd = -1;
	for (int i = 0; i < 8 && fd < 0; i++) {
		snprintf(tmp, sizeof tmp, ".mags-tmp-%d-%u", (int)getpid(), seq++);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		r = -errno;
		close(dfd);
		return r;
	}
	r = write_all(fd, data, len, -1);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	/* readers see the old file or the whole new one */
	if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dfd, tmp, 0);
	close(dfd);
	return r;
}

/* ---- channels -------------------------------------------------------------------- */

static struct fchan *fchan_find(struct agent *a, uint32_t id)
{
	for (struct fchan *f = a->fchans; f; f = f->next)
		if (f->id == id)
			return f;
	return NULL;
}

bool files_busy(struct agent *a, uint32_t chan)
{
	return fchan_find(a, chan) != NULL;
}

static void wmod_drop(struct fchan *f, size_t i)
{
	free(f->mods[i].path);
	f->mods[i] = f->mods[--f->nmods];
}

static void fchan_free(struct agent *a, struct fchan *f)
{
	for (struct fchan **pp = &a->fchans; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	a->nfchans--;
	if (f->fd >= 0) {
		if (f->polled)
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, f->fd, NULL);
		close(f->fd);
	}
	free(f->path);
	for (size_t i = 0; i < f->nnames; i++)
		free(f->names[i]);
	free(f->names);
	for (size_t i = 0; i < f->ndirs; i++)
		free(f->dirs[i].path);
	free(f->dirs);
	while (f->nmods)
		wmod_drop(f, 0);
	free(f->moved);
	free(f);
}

static struct fchan *fchan_new(struct agent *a, uint32_t id, enum fchan_kind kind, int fd)
{
	struct fchan *f = xcalloc(1, sizeof *f);
	f->id = id;
	f->kind = kind;
	f->fd = fd;
	f->top_wd = -1;
	f->next = a->fchans;
	a->fchans = f;
	a->nfchans++;
	return f;
}

/* A WATCH's inotify fd is read while neither the port's backlog nor PAUSE holds it. */
static void watch_poll(struct agent *a, struct fchan *f)
{
	bool want = !a->paused && !f->held;
	if (f->kind != FCHAN_WATCH || want == f->polled)
		return;
	if (want)
		agent_epoll_add(a, f->fd, EPOLLIN, AGENT_EV(AGENT_EV_WATCH, f->id));
	else
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, f->fd, NULL);
	f->polled = want;
}

void files_pause(struct agent *a, bool pause)
{
	(void)pause; /* a->paused says it */
	for (struct fchan *f = a->fchans; f; f = f->next)
		watch_poll(a, f);
}

bool files_hold(struct agent *a, uint32_t chan, bool hold)
{
	struct fchan *f = fchan_find(a, chan);
	if (!f)
		return false;
	f->held = hold;
	watch_poll(a, f);
	return true;
}

void files_cancel(struct agent *a, uint32_t chan)
{
	struct fchan *f = fchan_find(a, chan);
	if (f)
		fchan_free(a, f);
}

/* ---- INFO ------------------------------------------------------------------------ */

static const char *info_type(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "dir";
	return S_ISLNK(m) ? "symlink" : "other";
}

/* An INFO frame: name, path, type, size, mode, mtime_ns, and target (symlinks; read at dirfd/name). */
static void send_info(struct agent *a, uint32_t chan, const char *name, const char *path, const struct stat *st,
		      int dirfd, const char *lname)
{
	struct buf b;
	char num[32], target[PATH_MAX];
	buf_init(&b);
	proto_kv_puts(&b, "name", name);
	proto_kv_puts(&b, "path", path);
	proto_kv_puts(&b, "type", info_type(st->st_mode));
	snprintf(num, sizeof num, "%lld", (long long)st->st_size);
	proto_kv_puts(&b, "size", num);
	snprintf(num, sizeof num, "%04o", (unsigned)(st->st_mode & 07777));
	proto_kv_puts(&b, "mode", num);
	snprintf(num, sizeof num, "%lld", (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec);
	proto_kv_puts(&b, "mtime_ns", num);
	if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlinkat(dirfd, lname, target, sizeof target);
		proto_kv_put(&b, "target", target, n > 0 ? (size_t)n : 0);
	}
	agent_send(a, MSG_INFO, chan, b.data, b.len);
	buf_free(&b);
}

/* ---- FSTAT, FREMOVE, FMKDIR ------------------------------------------------------ */

static void do_stat(struct agent *a, uint32_t chan, const char *path)
{
	struct stat st;
	const char *name = "/";
	int fd = strcmp(path, "/") ? res_parent(path, &name) : res_open("/", O_PATH | O_DIRECTORY);
	if (fd < 0) {
		fail(a, chan, -fd, path);
		return;
	}
	if (fstatat(fd, strcmp(path, "/") ? name : "", &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0) {
		fail(a, chan, errno, path);
	} else {
		send_info(a, chan, name, path, &st, fd, name);
		agent_send(a, MSG_OK, chan, NULL, 0);
	}
	close(fd);
}

/*
 * Removes everything inside directory name (in dirfd), depth first, never
 * following a symlink (they are unlinked) nor entering another mount. path is
 * its path, for errors: on failure *bad holds the entry that failed (owned).
 * Returns 0 or -errno.
 */
static int remove_tree(int dirfd, const char *name, const char *path, int depth, char **bad)
{
	if (depth > FILES_DEPTH_MAX) {
		*bad = xstrdup(path);
		return -ELOOP;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*bad = xstrdup(path);
		return -errno;
	}
	if (is_mount_root(fd, "")) {
		close(fd);
		*bad = xstrdup(path);
		return -EBUSY;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		*bad = xstrdup(path);
		return -errno;
	}
	int r = 0;
	/* deleting while reading may skip entries: read again until a pass deletes nothing */
	for (int pass = 0, again = 1; again && r == 0 && pass < FILES_RM_PASSES; pass++) {
		again = 0;
		rewinddir(d);
		struct dirent *e;
		while (r == 0 && (e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			bool isdir = e->d_type == DT_DIR;
			if (e->d_type == DT_UNKNOWN) {
				struct stat st;
				isdir = fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
			}
			char *sub = xasprintf("%s/%s", path, e->d_name);
			if (isdir)
				r = remove_tree(fd, e->d_name, sub, depth + 1, bad);
			if (r == 0 && unlinkat(fd, e->d_name, isdir ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT) {
				r = -errno;
				*bad = xstrdup(sub);
			}
			free(sub);
			again = 1;
		}
	}
	closedir(d);
	return r;
}

static void do_remove(struct agent *a, uint32_t chan, const char *path, bool recursive)
{
	const char *name;
	struct stat st;
	if (!strcmp(path, "/")) {
		agent_send_error(a, chan, "EBUSY: /: the root cannot be removed");
		return;
	}
	int pfd = res_parent(path, &name), r = 0;
	char *bad = NULL;
	if (pfd < 0) {
		fail(a, chan, -pfd, path);
		return;
	}
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
	} else if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(pfd, name, 0) < 0) /* a symlink goes, its target stays */
			r = -errno;
	} else if (is_mount_root(pfd, name)) {
		r = -EBUSY;
	} else if (unlinkat(pfd, name, AT_REMOVEDIR) < 0) {
		r = -errno;
		if ((r == -ENOTEMPTY || r == -EEXIST) && recursive) {
			r = remove_tree(pfd, name, path, 0, &bad);
			if (r == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0)
				r = -errno;
		} else if (r == -EEXIST) {
			r = -ENOTEMPTY;
		}
	}
	close(pfd);
	if (r == -EBUSY)
		agent_send_error(a, chan, "EBUSY: %s: a mount point (FREMOVE stays on one file system)", bad ? bad : path);
	else if (r < 0)
		fail(a, chan, -r, bad ? bad : path);
	else
		agent_send(a, MSG_OK, chan, NULL, 0);
	free(bad);
}

static void do_mkdir(struct agent *a, uint32_t chan, const char *path, bool parents, mode_t mode)
{
	int r = 0;
	if (!strcmp(path, "/")) {
		if (parents)
			agent_send(a, MSG_OK, chan, NULL, 0);
		else
			fail(a, chan, EEXIST, path);
		return;
	}
	const char *slash = strrchr(path, '/'), *name = slash + 1;
	int pfd;
	if (parents) {
		char *dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
		pfd = res_mkdirs(dir);
		free(dir);
	} else {
		pfd = res_parent(path, &name);
	}
	if (pfd < 0) {
		fail(a, chan, -pfd, path);
		return;
	}
	if (mkdirat(pfd, name, mode) < 0) {
		r = -errno;
		if (r == -EEXIST && parents) {
			/* mkdir -p: a directory there (or a symlink to one, in the root) is fine */
			int fd = res_open(path, O_PATH | O_DIRECTORY);
			r = fd >= 0 ? 0 : -EEXIST;
			if (fd >= 0)
				close(fd);
		}
	} else {
		/* the exact mode, not the umask's */
		int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, mode) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
	}
	close(pfd);
	if (r < 0)
		fail(a, chan, -r, path);
	else
		agent_send(a, MSG_OK, chan, NULL, 0);
}

/* ---- FREAD and FLIST ------------------------------------------------------------- */

static void start_read(struct agent *a, uint32_t chan, const char *path, uint64_t off)
{
	struct stat st, st2;
	/* look first (O_PATH): opening a device or a fifo could block or have effects */
	int fd = res_open(path, O_PATH);
	if (fd < 0) {
		fail(a, chan, -fd, path);
		return;
	}
	int e = fstat(fd, &st) < 0 ? errno : 0;
	close(fd);
	if (e) {
		fail(a, chan, e, path);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		fail(a, chan, EISDIR, path);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		agent_send_error(a, chan, "EINVAL: %s: not a regular file", path);
		return;
	}
	fd = res_open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		fail(a, chan, -fd, path);
		return;
	}
	if (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		agent_send_error(a, chan, "EAGAIN: %s: replaced while it was opened", path);
		close(fd);
		return;
	}
	struct fchan *f = fchan_new(a, chan, FCHAN_READ, fd);
	f->off = off; /* files_timers streams it */
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void start_list(struct agent *a, uint32_t chan, const char *path)
{
	int fd = res_open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fail(a, chan, -fd, path);
		return;
	}
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		fail(a, chan, errno, path);
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	bool big = false;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == AGENT_LIST_MAX) { /* counted before anything is sent */
			big = true;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof *names);
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (big) {
		agent_send_error(a, chan, "E2BIG: %s: more than %d entries", path, AGENT_LIST_MAX);
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		close(fd);
		return;
	}
	qsort(names, n, sizeof *names, name_cmp); /* strcmp: byte order */
	struct fchan *f = fchan_new(a, chan, FCHAN_LIST, fd);
	f->path = xstrdup(path);
	f->names = names;
	f->nnames = n;
}

/* Sends the next part of an FREAD or FLIST; false when the channel ended (freed). */
static bool stream_pump(struct agent *a, struct fchan *f)
{
	static uint8_t chunk[AGENT_DATA_CHUNK];
	size_t sent = 0;
	while (agent_out_pending(a) <= AGENT_OUT_HIGH) {
		if (f->kind == FCHAN_READ) {
			if (sent >= FILES_READ_TURN)
				return true;
			ssize_t n = pread(f->fd, chunk, sizeof chunk, (off_t)f->off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				agent_send_error(a, f->id, "%s: read at %llu: %s", files_errname(errno),
						 (unsigned long long)f->off, strerror(errno));
				fchan_free(a, f);
				return false;
			}
			if (n == 0)
				break;
			agent_send(a, MSG_DATA, f->id, chunk, (size_t)n);
			f->off += (uint64_t)n;
			sent += (size_t)n;
		} else {
			if (f->next_name == f->nnames)
				break;
			if (sent++ >= FILES_LIST_TURN)
				return true;
			const char *name = f->names[f->next_name++];
			struct stat st;
			if (fstatat(f->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone since it was listed */
			char *p = xasprintf("%s/%s", strcmp(f->path, "/") ? f->path : "", name);
			send_info(a, f->id, name, p, &st, f->fd, name);
			free(p);
		}
	}
	if (agent_out_pending(a) > AGENT_OUT_HIGH)
		return true;
	agent_send(a, MSG_OK, f->id, NULL, 0);
	fchan_free(a, f);
	return false;
}

/* ---- WATCH ----------------------------------------------------------------------- */

static struct wdir *wdir_find(struct fchan *f, int wd)
{
	for (size_t i = 0; i < f->ndirs; i++)
		if (f->dirs[i].wd == wd)
			return &f->dirs[i];
	return NULL;
}

/* Watches directory fd (O_PATH), known as path. Returns 0 or -errno (-ENOSPC past AGENT_WATCH_MAX). */
static int watch_add(struct fchan *f, int fd, const char *path)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	/* the fd's own directory: the path it was found by may have changed since */
	int wd = inotify_add_watch(f->fd, proc, FILES_WATCH_MASK);
	if (wd < 0)
		return -errno;
	struct wdir *d = wdir_find(f, wd);
	if (d) { /* already watched (moved back): it has a new path */
		free(d->path);
		d->path = xstrdup(path);
		return 0;
	}
	if (f->ndirs == AGENT_WATCH_MAX) {
		inotify_rm_watch(f->fd, wd);
		return -ENOSPC;
	}
	if (f->ndirs == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->dirs = xrealloc(f->dirs, f->cap * sizeof *f->dirs);
	}
	f->dirs[f->ndirs++] = (struct wdir){ .wd = wd, .path = xstrdup(path) };
	return 0;
}

/* Watches every directory under fd (O_PATH, known as path), not following symlinks nor leaving its mount. */
static int watch_tree(struct fchan *f, int fd, const char *path, int depth)
{
	if (depth > FILES_DEPTH_MAX)
		return 0;
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return 0; /* gone or unreadable: nothing under it to watch */
	}
	int r = 0;
	struct dirent *e;
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		int cfd = openat(dfd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue; /* not a directory (DT_UNKNOWN), or gone */
		if (!is_mount_root(cfd, "")) {
			char *sub = xasprintf("%s/%s", strcmp(path, "/") ? path : "", e->d_name);
			r = watch_add(f, cfd, sub);
			if (r == 0)
				r = watch_tree(f, cfd, sub, depth + 1);
			free(sub);
		}
		close(cfd);
	}
	closedir(d);
	return r;
}

/* Stops watching path and everything under it (it moved away). */
static void watch_drop_tree(struct fchan *f, const char *path)
{
	size_t pl = strlen(path);
	for (size_t i = 0; i < f->ndirs;) {
		const char *p = f->dirs[i].path;
		if (f->dirs[i].wd != f->top_wd && !strncmp(p, path, pl) && (p[pl] == 0 || p[pl] == '/')) {
			inotify_rm_watch(f->fd, f->dirs[i].wd);
			free(f->dirs[i].path);
			f->dirs[i] = f->dirs[--f->ndirs];
		} else {
			i++;
		}
	}
}

static void send_event(struct agent *a, struct fchan *f, const char *kind, const char *path, bool dir)
{
	struct buf b;
	buf_init(&b);
	proto_kv_puts(&b, "kind", kind);
	proto_kv_puts(&b, "path", path);
	proto_kv_puts(&b, "dir", dir ? "1" : "0");
	agent_send(a, MSG_EVENT, f->id, b.data, b.len);
	buf_free(&b);
}

/* A "modify" of path: sent unless one went out less than FILES_MODIFY_MS ago (then it follows later). */
static void watch_modify(struct agent *a, struct fchan *f, const char *path, int64_t now)
{
	for (size_t i = 0; i < f->nmods; i++) {
		if (strcmp(f->mods[i].path, path))
			continue;
		if (now - f->mods[i].sent < FILES_MODIFY_MS) {
			f->mods[i].pending = true;
			return;
		}
		f->mods[i].sent = now;
		f->mods[i].pending = false;
		send_event(a, f, "modify", path, false);
		return;
	}
	if (f->nmods < FILES_MODS_MAX)
		f->mods[f->nmods++] = (struct wmod){ .path = xstrdup(path), .sent = now };
	send_event(a, f, "modify", path, false);
}

/* Before another event of path: its held-back "modify" goes first. */
static void watch_flush_modify(struct agent *a, struct fchan *f, const char *path)
{
	for (size_t i = 0; i < f->nmods; i++) {
		if (!strcmp(f->mods[i].path, path)) {
			if (f->mods[i].pending)
				send_event(a, f, "modify", path, false);
			wmod_drop(f, i);
			return;
		}
	}
}

/* Ends a WATCH with a last ERROR "ENAME: text". */
static void watch_end(struct agent *a, struct fchan *f, int e, const char *text)
{
	agent_send_error(a, f->id, "%s: %s", files_errname(e), text);
	fchan_free(a, f);
}

/* A new directory (created or moved in) under a recursive WATCH: watch it and its tree. */
static int watch_new_dir(struct fchan *f, const char *path)
{
	int fd = res_open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return 0; /* gone again, or not a directory after all */
	int r = is_mount_root(fd, "") ? 0 : watch_add(f, fd, path);
	if (r == 0)
		r = watch_tree(f, fd, path, 1);
	close(fd);
	return r;
}

/*
 * A directory's move_from came with no move_to of the same cookie after it:
 * it left the tree, and its watches go (the next event, or FILES_MODIFY_MS).
 */
static void watch_moved_away(struct fchan *f)
{
	watch_drop_tree(f, f->moved);
	free(f->moved);
	f->moved = NULL;
}

/* The EVENT kind of an inotify event's mask, or NULL for one not reported. */
static const char *event_kind(uint32_t mask)
{
	static const struct {
		uint32_t bit;
		const char *kind;
	} kinds[] = {
		{ IN_CREATE, "create" }, { IN_DELETE, "delete" }, { IN_MOVED_FROM, "move_from" },
		{ IN_MOVED_TO, "move_to" }, { IN_MODIFY, "modify" },
	};
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		if (mask & kinds[i].bit)
			return kinds[i].kind;
	return NULL;
}

/* Handles one inotify event; false when the channel ended. */
static bool watch_one(struct agent *a, struct fchan *f, const struct inotify_event *ev, int64_t now)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		watch_end(a, f, EOVERFLOW, "too many events at once; the watch stopped");
		return false;
	}
	/* the move_to of a pending move_from comes right after it, or it left the tree */
	if (f->moved && !((ev->mask & IN_MOVED_TO) && ev->cookie == f->moved_cookie))
		watch_moved_away(f);
	struct wdir *d = wdir_find(f, ev->wd);
	if (!d)
		return true; /* a directory dropped earlier */
	if (ev->wd == f->top_wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT))) {
		watch_end(a, f, ENOENT, "the watched directory is gone");
		return false;
	}
	if (ev->mask & IN_IGNORED) { /* a subdirectory went away */
		free(d->path);
		*d = f->dirs[--f->ndirs];
		return true;
	}
	if (!ev->len || !ev->name[0])
		return true;
	bool dir = ev->mask & IN_ISDIR;
	const char *kind = event_kind(ev->mask);
	/*
	 * A FILE write goes to a temporary name that is renamed over the file: a
	 * watcher sees one create of the file, not the temporary name's events.
	 */
	if (strstr(ev->name, ".mags-tmp-")) {
		if (ev->mask & IN_MOVED_FROM)
			f->tmp_cookie = ev->cookie;
		return true;
	}
	if ((ev->mask & IN_MOVED_TO) && ev->cookie && ev->cookie == f->tmp_cookie) {
		f->tmp_cookie = 0;
		kind = "create";
	}
	char *path = xasprintf("%s/%s", strcmp(d->path, "/") ? d->path : "", ev->name);
	int r = 0;
	if (kind && !strcmp(kind, "modify")) {
		watch_modify(a, f, path, now);
	} else if (kind) {
		watch_flush_modify(a, f, path);
		send_event(a, f, kind, path, dir);
		if (f->recursive && dir && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
			/* moved within the tree: its watches stay and take the new path here */
			free(f->moved);
			f->moved = NULL;
			r = watch_new_dir(f, path);
		} else if (f->recursive && dir && (ev->mask & IN_MOVED_FROM)) {
			f->moved = xstrdup(path);
			f->moved_cookie = ev->cookie;
			f->moved_at = now;
		}
	}
	free(path);
	if (r == -ENOSPC) {
		agent_send_error(a, f->id, "ENOSPC: more than %d directories to watch; the watch stopped", AGENT_WATCH_MAX);
		fchan_free(a, f);
		return false;
	}
	return true;
}

void files_event(struct agent *a, uint32_t chan, uint32_t events)
{
	static char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct fchan *f = fchan_find(a, chan);
	if (!f || f->kind != FCHAN_WATCH || f->held)
		return;
	int64_t now = agent_now_ms();
	for (int turn = 0; turn < 4; turn++) {
		ssize_t n = read(f->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
			off += (ssize_t)(sizeof *ev + ev->len);
			if (!watch_one(a, f, ev, now))
				return;
		}
	}
}

static void start_watch(struct agent *a, uint32_t chan, const char *path, bool recursive)
{
	unsigned watches = 0;
	for (struct fchan *f = a->fchans; f; f = f->next)
		watches += f->kind == FCHAN_WATCH;
	if (watches >= AGENT_WATCH_CHANS) {
		agent_send_error(a, chan, "EMFILE: more than %d WATCH channels at once", AGENT_WATCH_CHANS);
		return;
	}
	int fd = res_open(path, O_PATH | O_DIRECTORY);
	if (fd < 0) {
		fail(a, chan, -fd, path);
		return;
	}
	int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0) {
		fail(a, chan, errno, path);
		close(fd);
		return;
	}
	struct fchan *f = fchan_new(a, chan, FCHAN_WATCH, ifd);
	f->path = xstrdup(path);
	f->recursive = recursive;
	int r = watch_add(f, fd, path);
	if (r == 0) {
		f->top_wd = f->dirs[0].wd;
		if (recursive)
			r = watch_tree(f, fd, path, 1);
	}
	close(fd);
	if (r == -ENOSPC) {
		agent_send_error(a, chan, "ENOSPC: %s: more than %d directories to watch", path, AGENT_WATCH_MAX);
		fchan_free(a, f);
		return;
	}
	if (r < 0) {
		fail(a, chan, -r, path);
		fchan_free(a, f);
		return;
	}
	agent_send(a, MSG_OK, chan, NULL, 0);
	watch_poll(a, f);
}

/* Held-back "modify" events that are due; ms until the next, or -1. */
static int64_t watch_timers(struct agent *a, struct fchan *f, int64_t now)
{
	int64_t next = -1;
	if (f->moved && now - f->moved_at >= FILES_MODIFY_MS)
		watch_moved_away(f);
	else if (f->moved)
		next = f->moved_at + FILES_MODIFY_MS;
	for (size_t i = 0; i < f->nmods;) {
		struct wmod *m = &f->mods[i];
		int64_t due = m->sent + FILES_MODIFY_MS;
		if (now < due) {
			next = next < 0 || due < next ? due : next;
			i++;
		} else if (m->pending && !a->paused && !f->held) {
			send_event(a, f, "modify", m->path, false);
			m->sent = now;
			m->pending = false;
			i++;
			next = next < 0 || now + FILES_MODIFY_MS < next ? now + FILES_MODIFY_MS : next;
		} else if (!m->pending) {
			wmod_drop(f, i);
		} else {
			i++; /* due, but held: sent after RESUME (watch_poll wakes the loop) */
		}
	}
	return next;
}

int files_timers(struct agent *a)
{
	int64_t now = agent_now_ms(), next = -1;
	struct fchan *f = a->fchans, *nf;
	for (; f; f = nf) {
		nf = f->next;
		if (f->kind == FCHAN_WATCH) {
			int64_t t = watch_timers(a, f, now);
			if (t >= 0 && (next < 0 || t < next))
				next = t;
			continue;
		}
		if (f->held || a->paused)
			continue;
		if (stream_pump(a, f) && !a->paused && agent_out_pending(a) <= AGENT_OUT_HIGH)
			next = now;
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

/* ---- requests -------------------------------------------------------------------- */

static const char *fop_name(uint16_t type)
{
	switch (type) {
	case MSG_FREAD: return "FREAD";
	case MSG_FSTAT: return "FSTAT";
	case MSG_FLIST: return "FLIST";
	case MSG_FREMOVE: return "FREMOVE";
	case MSG_FMKDIR: return "FMKDIR";
	default: return "WATCH";
	}
}

void files_request(struct agent *a, uint16_t type, uint32_t chan, const uint8_t *kv, size_t len)
{
	struct payload_fop r;
	const char *bad;

	if (chan == 0) {
		agent_send_error(a, 0, "EINVAL: %s needs a nonzero channel", fop_name(type));
		return;
	}
	if (agent_chan_busy(a, chan)) {
		agent_send_error(a, chan, "EBUSY: channel %u is busy", chan);
		return;
	}
	if ((bad = payload_fop_parse(&r, type, kv, len)) != NULL) {
		agent_send_error(a, chan, "%s", bad);
		return;
	}
	bool streams = type == MSG_FREAD || type == MSG_FLIST || type == MSG_WATCH;
	if (streams && a->nchans + a->nfchans >= AGENT_CHAN_MAX) {
		agent_send_error(a, chan, "EMFILE: too many channels (max %d)", AGENT_CHAN_MAX);
		return;
	}
	if ((type == MSG_FREMOVE || type == MSG_FMKDIR) && a->ws_frozen) {
		/* the change would block PID 1 until THAW, which it could then never read */
		agent_send_error(a, chan, "EBUSY: the workspace is frozen");
		return;
	}
	char *path = files_abspath(r.path, r.path_len);
	switch (type) {
	case MSG_FREAD:
		start_read(a, chan, path, r.offset);
		break;
	case MSG_FSTAT:
		do_stat(a, chan, path);
		break;
	case MSG_FLIST:
		start_list(a, chan, path);
		break;
	case MSG_FREMOVE:
		do_remove(a, chan, path, r.recursive);
		break;
	case MSG_FMKDIR:
		do_mkdir(a, chan, path, r.parents, (mode_t)r.mode);
		break;
	case MSG_WATCH:
		start_watch(a, chan, path, r.recursive);
		break;
	}
	free(path);
}
