// SPDX-License-Identifier: MIT
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "xmalloc.h"

extern char **environ;

int proc_run_quiet(const char *const argv[])
{
	static const char *const dirs[] = { NULL, "/usr/sbin", "/sbin" };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int r = -ENOENT;
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs && r == -ENOENT; i++) {
		char *path = dirs[i] ? xasprintf("%s/%s", dirs[i], argv[0]) : xstrdup(argv[0]);
		pid_t pid;
		char *const *av = (char *const *)argv; /* posix_spawn does not write to it */
		int e = dirs[i] ? posix_spawn(&pid, path, &fa, NULL, av, environ)
				: posix_spawnp(&pid, path, &fa, NULL, av, environ);
		free(path);
		if (e) {
			r = -e;
			continue;
		}
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		r = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	posix_spawn_file_actions_destroy(&fa);
	return r;
}
