// SPDX-License-Identifier: MIT
/*
 * mags ssh NAME|ID [-- CMD ARGS...]: a shell (or CMD) in a running sandbox
 * through the real OpenSSH client. NAME is a workspace: its running sandbox,
 * started as `mags new NAME` would when there is none (cmd_new.c); ID is a
 * job. The CLI asks magsd for SSH access with its own key
 * (POST /mags-jobs/ID/access {"ssh": true, "ssh_public_key"}), pins the
 * host key magsd reports in ~/.mags/known_hosts under the alias mags-JOBID,
 * and then replaces itself with ssh (execvp), which owns the terminal from
 * there on: mags exits with ssh's exit code. MAGS_SSH names another ssh
 * binary (tests).
 *
 * The key pair is ~/.mags/id_ed25519(.pub), made by the real ssh-keygen on
 * first use; `mags run --ssh` (cmd_run.c) uses the same key, known_hosts
 * and command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "config.h"
#include "fs.h"
#include "text.h"
#include "xmalloc.h"

#define SSH_KEYGEN "ssh-keygen"
#define SSH_KNOWN_HOSTS_MAX (4u * 1024 * 1024)	/* bytes of ~/.mags/known_hosts we read */
#define SSH_ARGS_MAX 24				/* ssh's own words, before CMD */

extern char **environ;

int ssh_files_init(struct ssh_files *f, struct err *err)
{
	memset(f, 0, sizeof *f);
	f->dir = config_path(NULL);
	if (!f->dir)
		return err_set(err, 0, "HOME is not set: nowhere to keep the SSH key (~/.mags/id_ed25519)");
	f->key = config_path("id_ed25519");
	f->pub = config_path("id_ed25519.pub");
	f->known_hosts = config_path("known_hosts");
	return 0;
}

void ssh_files_free(struct ssh_files *f)
{
	free(f->dir);
	free(f->key);
	free(f->pub);
	free(f->known_hosts);
	memset(f, 0, sizeof *f);
}

void ssh_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* Whether prog (a path, or a name looked up in PATH as execvp does) is an executable file. */
static bool ssh_find_prog(const char *prog)
{
	struct stat st;
	if (strchr(prog, '/'))
		return stat(prog, &st) == 0 && S_ISREG(st.st_mode) && access(prog, X_OK) == 0;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;;) {
		size_t n = strcspn(p, ":");
		char *cand = n ? xasprintf("%.*s/%s", (int)n, p, prog) : xasprintf("./%s", prog);
		bool ok = stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0;
		free(cand);
		if (ok)
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

/*
 * Runs argv (argv[0] looked up in PATH) with stdin from /dev/null and, when
 * out is not NULL, stdout into the new file out (mode 0644); waits for it.
 * Returns 0 when it exited 0, else negative with err set.
 */
static int ssh_spawn(char *const argv[], const char *out, struct err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (out)
		posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	pid_t pid;
	int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e)
		return err_set(err, e, "run %s", argv[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_set(err, errno, "wait for %s", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_set(err, 0, "%s failed (exit %d)", argv[0], WEXITSTATUS(status));
	return err_set(err, 0, "%s killed by signal %d", argv[0], WTERMSIG(status));
}

/* Creates f->key and f->pub: generated under temporary names, the private key renamed last. */
static int ssh_key_generate(const struct ssh_files *f, struct err *err)
{
	char *tmp = xasprintf("%s/.id_ed25519.tmp.%d", f->dir, (int)getpid());
	char *tmp_pub = xasprintf("%s.pub", tmp);
	unlink(tmp);
	unlink(tmp_pub);
	char *argv[] = { (char *)SSH_KEYGEN, (char *)"-q", (char *)"-t", (char *)"ed25519", (char *)"-N", (char *)"",
			 (char *)"-C", (char *)"mags", (char *)"-f", tmp, NULL };
	int r = ssh_spawn(argv, NULL, err);
	if (r == 0 && rename(tmp_pub, f->pub) < 0)
		r = err_set(err, errno, "rename %s", tmp_pub);
	if (r == 0 && rename(tmp, f->key) < 0)
		r = err_set(err, errno, "rename %s", tmp);
	if (r < 0) {
		unlink(tmp);
		unlink(tmp_pub);
	}
	free(tmp);
	free(tmp_pub);
	return r;
}

/* Writes f->pub from f->key (ssh-keygen -y), for a pair that lost its .pub. */
static int ssh_key_derive_pub(const struct ssh_files *f, struct err *err)
{
	char *tmp = xasprintf("%s.tmp.%d", f->pub, (int)getpid());
	char *argv[] = { (char *)SSH_KEYGEN, (char *)"-y", (char *)"-f", f->key, NULL };
	int r = ssh_spawn(argv, tmp, err);
	if (r == 0 && rename(tmp, f->pub) < 0)
		r = err_set(err, errno, "rename %s", tmp);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

int ssh_key_ensure(const struct ssh_files *f, char **pub, struct err *err)
{
	*pub = NULL;
	int r = fs_mkdir_p(f->dir, 0700);
	if (r < 0)
		return err_set(err, -r, "create %s", f->dir);
	if (chmod(f->dir, 0700) < 0)	/* it holds a private key */
		return err_set(err, errno, "chmod %s", f->dir);
	bool have_key = access(f->key, F_OK) == 0, have_pub = access(f->pub, F_OK) == 0;
	if (!have_key || !have_pub) {
		if (!ssh_find_prog(SSH_KEYGEN))
			return err_set(err, 0, "%s not found: install the OpenSSH client tools to make the SSH key %s",
				       SSH_KEYGEN, f->key);
		r = have_key ? ssh_key_derive_pub(f, err) : ssh_key_generate(f, err);
		if (r < 0)
			return err_wrap(err, "SSH key %s", f->key);
	}
	char *text = NULL, *type = NULL, *data = NULL;
	if ((r = fs_read_file(f->pub, TEXT_HOST_KEY_MAX, &text, NULL, err)) < 0)
		return err_wrap(err, "SSH key");
	if (text_ssh_key_split(text, &type, &data) < 0) {
		r = err_set(err, 0, "%s: not an OpenSSH public key line", f->pub);
	} else {
		size_t n = strcspn(text, "\r\n");
		while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
			n--;
		*pub = xstrndup(text + strspn(text, " \t"), n - strspn(text, " \t"));
	}
	free(type);
	free(data);
	free(text);
	return r;
}

/* Replaces (or adds) the line for host in f->known_hosts. */
static int ssh_known_hosts_set(const struct ssh_files *f, const char *host, const char *type, const char *data,
			       struct err *err)
{
	char *old = NULL;
	size_t len = 0;
	struct err e;
	int r = fs_mkdir_p(f->dir, 0700);
	if (r < 0)
		return err_set(err, -r, "create %s", f->dir);
	if (fs_read_file(f->known_hosts, SSH_KNOWN_HOSTS_MAX, &old, &len, &e) < 0 && e.code != ENOENT)
		return err_set(err, e.code, "%s", e.msg);
	char *text = text_known_hosts_set(old, len, host, type, data);
	r = fs_write_file(f->known_hosts, text, strlen(text), 0600, err);
	free(text);
	free(old);
	return r;
}

/* path for an ssh option or -i: '%' doubled (ssh expands %-tokens in both). */
static char *ssh_path_arg(const char *prefix, const char *path, bool quote)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, prefix);
	/* a config value with blanks must be "quoted" (UserKnownHostsFile takes several files) */
	quote = quote && strpbrk(path, " \t");
	if (quote)
		buf_putc(&b, '"');
	for (const char *p = path; *p; p++) {
		if (*p == '%')
			buf_putc(&b, '%');
		buf_putc(&b, *p);
	}
	if (quote)
		buf_putc(&b, '"');
	return buf_steal(&b);
}

/* Whether s may stand in USER@HOST: not empty, no '-' first, no blanks, '@' or control characters. */
static bool ssh_word_ok(const char *s, size_t max)
{
	if (!s || !*s || *s == '-' || strlen(s) > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '@' || *p == 0x7f)
			return false;
	return true;
}

int ssh_command(const struct ssh_files *f, const char *prog, json_t *job, bool tty, char **cmd, int ncmd,
		char ***argv, struct err *err)
{
	*argv = NULL;
	const char *id = json_string_value(json_object_get(job, "id"));
	json_t *ssh = json_object_get(job, "ssh");
	if (!id || !*id)
		return err_set(err, 0, "unexpected answer from magsd (a job without \"id\")");
	if (!json_is_object(ssh))
		return err_set(err, 0, "magsd did not report SSH access for job %s (no \"ssh\" in its answer)", id);
	const char *host = json_string_value(json_object_get(ssh, "host"));
	const char *user = json_string_value(json_object_get(ssh, "user"));
	const char *host_key = json_string_value(json_object_get(ssh, "host_key"));
	json_t *portv = json_object_get(ssh, "port");
	if (!user)
		user = "root";
	if (!ssh_word_ok(host, 255) || !ssh_word_ok(user, 64) || !json_is_integer(portv) ||
	    json_integer_value(portv) < 1 || json_integer_value(portv) > 65535)
		return err_set(err, 0, "magsd sent unusable SSH details for job %s (host, port or user)", id);
	char *type = NULL, *data = NULL;
	if (text_ssh_key_split(host_key, &type, &data) < 0)
		return err_set(err, 0, "magsd sent no usable SSH host key for job %s", id);
	char *alias = xasprintf("mags-%s", id);
	int r = ssh_known_hosts_set(f, alias, type, data, err);
	free(type);
	free(data);
	if (r < 0) {
		free(alias);
		return r;
	}
	char **v = xcalloc((size_t)SSH_ARGS_MAX + (size_t)ncmd + 1, sizeof *v);
	int n = 0;
	v[n++] = xstrdup(prog);
	v[n++] = xstrdup("-i");
	v[n++] = ssh_path_arg("", f->key, false);
	v[n++] = xstrdup("-o");
	v[n++] = xstrdup("IdentitiesOnly=yes");
	v[n++] = xstrdup("-o");
	v[n++] = ssh_path_arg("UserKnownHostsFile=", f->known_hosts, true);
	v[n++] = xstrdup("-o");
	v[n++] = xasprintf("HostKeyAlias=%s", alias);
	v[n++] = xstrdup("-o");
	v[n++] = xstrdup("StrictHostKeyChecking=yes");
	v[n++] = xstrdup("-o");
	v[n++] = xstrdup("LogLevel=ERROR");
	v[n++] = xstrdup("-p");
	v[n++] = xasprintf("%lld", (long long)json_integer_value(portv));
	if (tty)
		v[n++] = xstrdup("-t");
	if (ncmd)
		v[n++] = xstrdup("--");
	v[n++] = xasprintf("%s@%s", user, host);
	for (int i = 0; i < ncmd; i++)
		v[n++] = xstrdup(cmd[i]);
	v[n] = NULL;
	free(alias);
	*argv = v; /* transferred */
	return 0;
}

/* POST /mags-jobs/ID/access {"ssh": true, "ssh_public_key": pub}; the job in *job. */
static int ssh_enable(struct client *c, const char *id, const char *pub, json_t **job, struct err *err)
{
	json_t *body = json_object();
	json_object_set_new(body, "ssh", json_true());
	json_object_set_new(body, "ssh_public_key", json_string(pub));
	char *esc = client_escape(c, id);
	char *path = xasprintf("/mags-jobs/%s/access", esc);
	free(esc);
	int r = client_call(c, "POST", path, body, job, err);
	free(path);
	json_decref(body);
	return r;
}

int cmd_ssh(struct cli *cli, int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_print_usage("ssh");
			return CLI_EXIT_OK;
		}
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] == '-' && a[1])
			return cli_usage_error("ssh", "ssh: unknown flag %s", a);
		break;
	}
	if (i >= argc)
		return cli_usage_error("ssh", "ssh: missing NAME|ID");
	const char *target = argv[i++];
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	char **cmd = argv + i;
	int ncmd = argc - i;
	bool by_id = text_is_job_id(target);
	if (!by_id && !text_workspace_ok(target))
		return cli_usage_error("ssh", "ssh: \"%s\" is neither a job id nor a workspace name (%s)", target,
				       TEXT_WORKSPACE_RULE);
	const char *prog = getenv("MAGS_SSH");
	if (!prog || !*prog)
		prog = "ssh";

	struct ssh_files files = { 0 };
	struct err err;
	struct client *c = NULL;
	json_t *sandbox = NULL, *job = NULL;
	char *pub = NULL, **sargv = NULL;
	int ret = CLI_EXIT_FAIL;
	if (!ssh_find_prog(prog)) {
		if (strcmp(prog, "ssh"))
			cli_error("MAGS_SSH=%s: not an executable file", prog);
		else
			cli_error("ssh not found: install the OpenSSH client (ssh) to use mags ssh");
		goto out;
	}
	if (ssh_files_init(&files, &err) < 0 || ssh_key_ensure(&files, &pub, &err) < 0 ||
	    cli_connect(cli, &c, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	const char *id = target;
	if (!by_id) {
		bool created;
		if (new_ensure(c, target, false, NULL, &sandbox, &created, &err) < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		id = json_string_value(json_object_get(sandbox, "id"));
		if (created)
			cli_error("started sandbox %s (job %s)", target, id);
	}
	if (ssh_enable(c, id, pub, &job, &err) < 0 ||
	    ssh_command(&files, prog, job, ncmd == 0 && isatty(STDIN_FILENO), cmd, ncmd, &sargv, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	/* nothing of ours may outlive the exec: the connection to magsd closes here */
	client_free(c);
	c = NULL;
	fflush(stdout);
	fflush(stderr);
	execvp(sargv[0], sargv);
	cli_error("run %s: %s", sargv[0], strerror(errno));
out:
	ssh_argv_free(sargv);
	free(pub);
	json_decref(job);
	json_decref(sandbox);
	client_free(c);
	ssh_files_free(&files);
	return ret;
}
