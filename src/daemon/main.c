// SPDX-License-Identifier: MIT
/*
 * magsd: the Mags daemon. Parses the command line, opens the state (SQLite
 * under --state-dir), picks the VM engine, recovers from an earlier crash,
 * then serves the REST API until SIGTERM/SIGINT, when it shuts down
 * gracefully: running jobs get a grace period, queued ones stay queued.
 *
 *   magsd [--state-dir DIR] [--listen HOST:PORT] [--guest-dir DIR]
 *         [--max-concurrent N] [--accel auto|kvm|tcg] [--daemon] [--log-file F]
 *         [--shutdown-grace SECONDS] [--pool-size N] [--pool-mode warm|incoming] [--no-snapshot]
 *         [--template-dir DIR] [--store URL] [--s3-endpoint URL] [--image NAME] [--debug]
 *   magsd [--state-dir DIR] token create [--user NAME]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/engine.h"
#include "cluster.h"
#include "cron_sched.h"
#include "db.h"
#include "fast.h"
#include "names.h"
#include "fs.h"
#include "access.h"
#include "http.h"
#include "images.h"
#include "jobs.h"
#include "log.h"
#include "workspace.h"
#include "xmalloc.h"

extern const char *api_engine_name;

struct options {
	char *state_dir;
	const char *listen;
	char *guest_dir;
	int max_concurrent;
	const char *accel;
	bool daemon;
	const char *log_file;
	int shutdown_grace;
	int idle_timeout;	/* seconds before an idle always-on sandbox sleeps */
	int pool_size;		/* QEMUs waiting for a restore */
	bool no_snapshot;	/* always cold boot */
	bool pool_warm;		/* --pool-mode warm: pool of restored, warmed-up VMs */
	char *template_dir;
	const char *store;	/* object store URL; NULL = file://STATE/store */
	const char *s3_endpoint;
	const char *net;	/* auto | tap | user | none */
	const char *image;	/* the default guest image; NULL = debian if there, else busybox */
	const char *jail;	/* auto | on | off: QEMU jailed (src/engine/jail.h) */
	long jail_uid_base;	/* VM uids from here */
	struct access_config access;
	bool debug;
	const char *db;		/* --db: a SQLite path or a postgres:// URL; NULL = STATE/mags.db */
	const char *node_id;	/* --node-id; NULL = the host name */
	const char *advertise;	/* --advertise http://HOST:PORT */
	int node_timeout;	/* --node-timeout seconds */
};

static void __attribute__((noreturn)) usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: magsd [--state-dir DIR] [--listen HOST:PORT] [--guest-dir DIR]\n"
		"             [--max-concurrent N] [--accel auto|kvm|tcg] [--daemon] [--log-file FILE]\n"
		"             [--shutdown-grace SECONDS] [--pool-size N] [--pool-mode warm|incoming] [--no-snapshot]\n"
		"             [--template-dir DIR] [--store file:///DIR|s3://BUCKET[/PREFIX]]\n"
		"             [--s3-endpoint URL] [--net auto|tap|user|none] [--url-listen HOST:PORT|off]\n"
		"             [--url-domain DOMAIN] [--tls-cert PEM --tls-key PEM] [--ssh-host ADDR]\n"
		"             [--idle-timeout SECONDS] [--image NAME] [--jail auto|on|off]\n"
		"             [--jail-uid-base UID] [--debug]\n"
		"             [--db PATH|postgres://...] [--node-id ID] [--advertise http://HOST:PORT]\n"
		"             [--node-timeout SECONDS]\n"
		"       magsd [--state-dir DIR] token create|list [--user NAME]\n"
		"       magsd [--state-dir DIR] token revoke ID\n"
		"       magsd [--state-dir DIR] user list\n");
	exit(code);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("magsd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* <dir of this executable>/../guest, or ../../guest for build/san/bin. */
/* Replaces *path by its canonical absolute form (when it exists). */
static void absolute(char **path)
{
	char *abs = *path ? realpath(*path, NULL) : NULL;
	if (abs) {
		free(*path);
		*path = abs;
	}
}

static char *default_guest_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return xstrdup("guest");
	exe[n] = '\0';
	char *dir = dirname(exe);
	char *a = xasprintf("%s/../guest", dir);
	if (access(a, F_OK) == 0)
		return a;
	free(a);
	return xasprintf("%s/../../guest", dir);
}

static int parse_int(const char *s, const char *what, int lo, int hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < lo || v > hi)
		die("%s: expected an integer from %d to %d, not \"%s\"", what, lo, hi, s);
	return (int)v;
}

/* Opens --db, else STATE/mags.db, for the offline commands (token, user). */
static char *offline_db(const struct options *o)
{
	struct err err = { 0 };
	char *dbpath = o->db ? xstrdup(o->db) : xasprintf("%s/mags.db", o->state_dir);
	if (fs_mkdir_p(o->state_dir, 0700) < 0)
		die("create state dir %s: %s", o->state_dir, strerror(errno));
	if (db_open(dbpath, &err) < 0)
		die("%s", err.msg);
	return dbpath;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	printf("%s\n", s ? s : "null");
	free(s);
	json_decref(v);
}

/*
 * magsd token create [--user NAME] | token list [--user NAME] | token revoke ID,
 * and magsd user list: run against the database, with or without a running magsd.
 */
static int token_cmd(struct options *o, int argc, char **argv)
{
	const char *user = "default";
	if (argc < 1 || (strcmp(argv[0], "create") && strcmp(argv[0], "list") && strcmp(argv[0], "revoke")))
		die("token: expected \"token create [--user NAME]\", \"token list [--user NAME]\" or \"token revoke ID\"");
	bool revoke = !strcmp(argv[0], "revoke");
	if (revoke && argc != 2)
		die("token revoke: expected one token id (see magsd token list)");
	for (int i = 1; !revoke && i < argc; i++) {
		if (!strcmp(argv[i], "--user") && i + 1 < argc)
			user = argv[++i];
		else
			die("token %s: unexpected argument \"%s\"", argv[0], argv[i]);
	}
	if (!*user || strlen(user) > 64)
		die("token: --user must be 1 to 64 characters");
	struct err err = { 0 };
	char *dbpath = offline_db(o);
	if (!strcmp(argv[0], "create")) {
		char *tok;
		if (db_token_create(user, &tok, &err) < 0)
			die("%s", err.msg);
		printf("%s\n", tok);
		free(tok);
	} else if (revoke) {
		char *end;
		long long id = strtoll(argv[1], &end, 10);
		if (!*argv[1] || *end || id <= 0 || db_token_revoke(0, id) < 0)
			die("token revoke: no token %s", argv[1]);
		printf("revoked token %lld\n", id);
	} else {
		int64_t uid = db_user_ensure(user, &err);
		if (!uid)
			die("%s", err.msg);
		print_json(db_token_list(uid));
	}
	db_close();
	free(dbpath);
	return 0;
}

static int user_cmd(struct options *o, int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "list"))
		die("user: expected \"user list\" (users are made by \"token create --user NAME\")");
	char *dbpath = offline_db(o);
	print_json(db_user_list());
	db_close();
	free(dbpath);
	return 0;
}

/* Forks; the parent exits 0 once the child writes to the ready pipe (or 1 if it dies). */
static int daemonize(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		close(p[1]);
		char c;
		ssize_t n = read(p[0], &c, 1);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

int main(int argc, char **argv)
{
	struct options o = { .listen = "127.0.0.1:7557", .accel = "auto", .shutdown_grace = 10, .idle_timeout = 600, .pool_size = 2,
			     .pool_warm = true, .jail_uid_base = 900000 };
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "guest-dir", required_argument, NULL, 'g' },
		{ "max-concurrent", required_argument, NULL, 'c' },
		{ "accel", required_argument, NULL, 'a' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "shutdown-grace", required_argument, NULL, 'G' },
		{ "pool-size", required_argument, NULL, 'P' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "no-snapshot", no_argument, NULL, 'N' },
		{ "pool-mode", required_argument, NULL, 'M' },
		{ "template-dir", required_argument, NULL, 'T' },
		{ "store", required_argument, NULL, 'S' },
		{ "s3-endpoint", required_argument, NULL, 'E' },
		{ "net", required_argument, NULL, 'n' },
		{ "url-listen", required_argument, NULL, 'U' },
		{ "url-domain", required_argument, NULL, 'O' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "ssh-host", required_argument, NULL, 'H' },
		{ "image", required_argument, NULL, 'i' },
		{ "jail", required_argument, NULL, 'J' },
		{ "jail-uid-base", required_argument, NULL, 'u' },
		{ "debug", no_argument, NULL, 'D' },
		{ "db", required_argument, NULL, 'B' },
		{ "node-id", required_argument, NULL, 'W' },
		{ "advertise", required_argument, NULL, 'A' },
		{ "node-timeout", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': free(o.state_dir); o.state_dir = xstrdup(optarg); break;
		case 'l': o.listen = optarg; break;
		case 'g': free(o.guest_dir); o.guest_dir = xstrdup(optarg); break;
		case 'c': o.max_concurrent = parse_int(optarg, "--max-concurrent", 1, 1024); break;
		case 'a': o.accel = optarg; break;
		case 'd': o.daemon = true; break;
		case 'L': o.log_file = optarg; break;
		case 'G': o.shutdown_grace = parse_int(optarg, "--shutdown-grace", 0, 3600); break;
		case 'P': o.pool_size = parse_int(optarg, "--pool-size", 0, 256); break;
		case 'I': o.idle_timeout = parse_int(optarg, "--idle-timeout", 0, 7 * 86400); break;
		case 'N': o.no_snapshot = true; break;
		case 'M':
			if (strcmp(optarg, "warm") && strcmp(optarg, "incoming"))
				die("--pool-mode: expected warm or incoming, not \"%s\"", optarg);
			o.pool_warm = !strcmp(optarg, "warm");
			break;
		case 'T': free(o.template_dir); o.template_dir = xstrdup(optarg); break;
		case 'S': o.store = optarg; break;
		case 'E': o.s3_endpoint = optarg; break;
		case 'n': o.net = optarg; break;
		case 'U': o.access.url_listen = optarg; break;
		case 'O': o.access.domain = optarg; break;
		case 'C': o.access.tls_cert = optarg; break;
		case 'K': o.access.tls_key = optarg; break;
		case 'H': o.access.ssh_host = optarg; break;
		case 'i':
			if (!image_name_ok(optarg))
				die("--image: \"%s\" is not an image name (1-%d of a-z 0-9 . _ -)", optarg, IMAGE_NAME_MAX);
			o.image = optarg;
			break;
		case 'J': o.jail = optarg; break;
		case 'u': o.jail_uid_base = parse_int(optarg, "--jail-uid-base", 1000, 2000000000); break;
		case 'D': o.debug = true; break;
		case 'B': o.db = optarg; break;
		case 'W':
			if (!cluster_node_id_ok(optarg))
				die("--node-id: \"%s\" is not a node id (1-%d of a-z A-Z 0-9 . _ -)", optarg, NODE_ID_MAX - 1);
			o.node_id = optarg;
			break;
		case 'A': o.advertise = optarg; break;
		case 'X': o.node_timeout = parse_int(optarg, "--node-timeout", 2, 3600); break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (!o.state_dir) {
		const char *home = getenv("HOME");
		o.state_dir = xasprintf("%s/.mags/local", home && *home ? home : "/root");
	}
	if (optind < argc) {
		if (!strcmp(argv[optind], "user")) {
			int r = user_cmd(&o, argc - optind - 1, argv + optind + 1);
			free(o.state_dir);
			free(o.guest_dir);
			return r;
		}
		if (!strcmp(argv[optind], "token")) {
			int r = token_cmd(&o, argc - optind - 1, argv + optind + 1);
			free(o.state_dir);
			free(o.guest_dir);
			return r;
		}
		die("unexpected argument \"%s\" (see magsd --help)", argv[optind]);
	}
	if (!o.guest_dir)
		o.guest_dir = default_guest_dir();
	if (!o.access.tls_cert != !o.access.tls_key)
		die("--tls-cert and --tls-key go together");
	if (!o.access.domain)
		o.access.domain = "localhost";
	char *url_listen = NULL, *ssh_host = NULL;
	if (!o.access.url_listen || !o.access.ssh_host) {
		/* default: the API's host, port + 1 for URLs */
		const char *colon = strrchr(o.listen, ':');
		int port = colon ? atoi(colon + 1) : 0;
		size_t hl = colon ? (size_t)(colon - o.listen) : strlen(o.listen);
		ssh_host = xstrndup(o.listen, hl);
		url_listen = xasprintf("%s:%d", ssh_host, port > 0 && port < 65535 ? port + 1 : 0);
		if (!o.access.url_listen) {
			o.access.url_listen = url_listen;
			o.access.url_listen_default = true;
		}
		if (!o.access.ssh_host)
			o.access.ssh_host = ssh_host;
	}
	if (!o.max_concurrent) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.max_concurrent = n > 0 ? (int)n : 1;
	}
	log_set_level(o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);

	signal(SIGPIPE, SIG_IGN);
	sigset_t stopset;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGHUP);
	/* every thread inherits the mask; only main's sigwait takes these */
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);

	if (fs_mkdir_p(o.state_dir, 0700) < 0)
		die("create state dir %s: %s", o.state_dir, strerror(errno));
	if (o.template_dir && fs_mkdir_p(o.template_dir, 0700) < 0)
		die("create template dir %s: %s", o.template_dir, strerror(errno));
	/* absolute from here on: jailed QEMUs see the same paths, but from another root and cwd */
	absolute(&o.state_dir);
	absolute(&o.guest_dir);
	absolute(&o.template_dir);
	char *run_root = xasprintf("%s/run", o.state_dir);
	if (fs_mkdir_p(run_root, 0700) < 0)
		die("create %s: %s", run_root, strerror(errno));

	int ready_fd = -1;
	if (o.daemon) {
		char *lf = o.log_file ? xstrdup(o.log_file) : xasprintf("%s/magsd.log", o.state_dir);
		int fd = open(lf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			die("open log file %s: %s", lf, strerror(errno));
		ready_fd = daemonize();
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(nul);
		close(fd);
		free(lf);
	} else if (o.log_file) {
		int fd = open(o.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			die("open log file %s: %s", o.log_file, strerror(errno));
		dup2(fd, 2);
		close(fd);
	}

	struct err err = { 0 };
	char *dbpath = o.db ? xstrdup(o.db) : xasprintf("%s/mags.db", o.state_dir);
	if (db_open(dbpath, &err) < 0)
		die("%s", err.msg);
	struct cluster_config cc = { .node_id = o.node_id, .advertise = o.advertise, .listen = o.listen,
				     .db_target = dbpath, .timeout_s = o.node_timeout, .state_dir = o.state_dir,
				     .capacity = o.max_concurrent > 0 ? o.max_concurrent : 1, .ssh_host = o.access.ssh_host };
	if (cluster_start(&cc, &err) < 0)
		die("%s", err.msg);
	struct engine eng;
	if (engine_init(&eng, o.guest_dir, o.accel, &err) < 0)
		die("%s", err.msg);
	if (engine_disks_init(&eng, o.state_dir, &err) < 0)
		die("%s", err.msg);
	if (net_init(&eng.net, o.net, &err) < 0)
		die("%s", err.msg);
	log_info("network: %s (%s)%s", net_mode_name(eng.net.mode), eng.net.why,
		 eng.net.mode == NET_USER ? "; user-mode networking cannot keep guests from the host's services, "
					    "and guest ports are forwarded from 127.0.0.1 (run magsd as root for tap)" : "");
	api_engine_name = engine_accel_name(&eng);
	static struct jail jail;
	if (jail_init(&jail, o.jail, (uid_t)o.jail_uid_base, o.state_dir, &err) < 0)
		die("%s", err.msg);
	eng.jail = &jail;
	log_info("QEMU jail: %s", jail.why);
	if (images_init(&eng, o.guest_dir, o.image, &err) < 0)
		die("%s", err.msg);
	struct ws_config wc = { .state_dir = o.state_dir, .store_url = o.store, .s3_endpoint = o.s3_endpoint };
	if (ws_init(&wc, &err) < 0)
		die("%s", err.msg);
	log_info("workspaces: object store %s", ws_store_url());
	log_info("magsd starting: state %s, engine %s (%s), kernel %s, images %s (default %s), %d concurrent",
		 o.state_dir, api_engine_name, eng.accel_why, eng.kernel, images_names(), images_default()->name,
		 o.max_concurrent);

	struct jobs_config jc = { .net = &eng.net, .accel = api_engine_name, .run_root = run_root, .max_concurrent = o.max_concurrent,
				  .idle_timeout = o.idle_timeout };
	if (jobs_start(&jc, &err) < 0)
		die("%s", err.msg);
	if (!o.template_dir)
		o.template_dir = xasprintf("%s/templates", o.state_dir);
	struct fast_config fc = { .template_root = o.template_dir, .run_root = run_root,
				  .pool_size = o.pool_size, .pool_warm = o.pool_warm, .new_disk = ws_new_pool_disk };
	if (!o.no_snapshot)
		images_fast_start(&fc);
	if (access_start(&o.access, &err) < 0 || http_start(o.listen, &err) < 0) {
		jobs_shutdown(0);
		images_free();
		access_stop();
		die("%s", err.msg);
	}
	cluster_set_proxy_port(access_url_port());
	if (cron_sched_start(&err) < 0)
		log_warn("cron: %s", err.msg);
	log_info("listening on http://%s/api/v1", o.listen);
	if (ready_fd >= 0) {
		if (write(ready_fd, "1", 1) < 0) {
			/* parent gone; keep serving */
		}
		close(ready_fd);
	}

	int sig = 0;
	sigwait(&stopset, &sig);
	log_info("signal %d: shutting down (grace %ds for running jobs)", sig, o.shutdown_grace);
	cron_sched_stop();
	jobs_shutdown(o.shutdown_grace * 1000);
	cluster_stop();
	images_free();
	access_stop();
	http_stop();
	ws_shutdown();
	db_close();
	engine_free(&eng);
	free(dbpath);
	free(run_root);
	free(o.state_dir);
	free(o.guest_dir);
	free(o.template_dir);
	free(url_listen);
	free(ssh_host);
	log_info("magsd stopped");
	return 0;
}
