// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/engine/jail.c: the uid change in a child of clone()
 * made while other threads start and end. glibc's setresuid and friends
 * hung there (they wait on a copy of the parent's thread list); a child
 * that does not exit within seconds is a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/engine/jail.h"

#define CLONES 400
#define HANG_MS 10000

static atomic_bool stop;

static void *nothing(void *arg)
{
	return arg;
}

/* starts and joins threads until told to stop: glibc's thread list keeps changing */
static void *churn(void *arg)
{
	while (!atomic_load(&stop)) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL) == 0)
			pthread_join(t, NULL);
	}
	return arg;
}

/* not instrumented: ASan warns of the foreign stack at _exit otherwise */
__attribute__((no_sanitize("address"))) static int child(void *arg)
{
	(void)arg;
	/* its own ids again: allowed to anyone, the groups list only to root */
	bool root = geteuid() == 0;
	int e = jail_set_ids(getuid(), getgid(), root ? getgid() : (gid_t)-1);
	_exit(e == 0 ? 0 : root || e != EPERM ? 2 : 3);
}

static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void test_set_ids_in_clone_child_beside_threads(void **state)
{
	(void)state;
	pthread_t t[3];
	atomic_store(&stop, false);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
	static char stack[64 * 1024];
	int hung = 0, failed = 0;
	for (int i = 0; i < CLONES; i++) {
		pid_t pid = clone(child, stack + sizeof stack, SIGCHLD, NULL);
		assert_true(pid > 0);
		int st = 0;
		long long deadline = ms_now() + HANG_MS;
		pid_t w;
		while ((w = waitpid(pid, &st, WNOHANG)) == 0 && ms_now() < deadline)
			usleep(500);
		if (w != pid) {
			hung++;
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3)) {
			failed++;
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(hung, 0);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_ids_in_clone_child_beside_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
