/*
 * test_proxy_confine: after proxy_confine() the process that holds the secrets can still
 * read what name resolution and TLS verification need, and nothing else: no file under
 * $HOME (a planted ~/.ssh key), no writes, no exec. Each check runs in a forked child so
 * that the confinement does not bind this test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/landlock.h>

#include "proxy.h"

static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

/* Run fn confined in a child; its exit status is the result (0: as expected). */
static int confined(int (*fn)(const char *), const char *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		proxy_confine();
		_exit(fn(arg));
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int can_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}

static int cannot_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		return 1;
	return errno == EACCES ? 0 : 2;
}

static int cannot_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd >= 0)
		return 1;
	return 0;
}

static int cannot_exec(const char *path)
{
	char *argv[] = { (char *)path, NULL };

	execv(path, argv);
	return 0; /* still here: refused */
}

int main(void)
{
	const char *home = getenv("HOME");
	char secret[4096], newfile[4096];
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int fd;

	if (!home || !*home) {
		printf("skip: no HOME\n");
		return 0;
	}
	snprintf(secret, sizeof(secret), "%s/.agentjail-confine-test-key", home);
	snprintf(newfile, sizeof(newfile), "%s/.agentjail-confine-test-new", home);
	fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "key\n", 4) != 4) {
		printf("skip: cannot write %s\n", secret);
		return 0;
	}
	close(fd);
	unlink(newfile);

	check(confined(can_read, "/etc/hosts") == 0, "reads /etc/hosts (name resolution)");
	check(confined(can_read, "/etc/ssl/certs/ca-certificates.crt") == 0 ||
		      access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0,
	      "reads the system trust store");
	check(confined(cannot_exec, "/bin/true") == 0, "cannot exec");
	if (abi < 1) {
		printf("skip: no Landlock in this kernel: reads and writes are not confined\n");
	} else {
		check(confined(cannot_read, secret) == 0, "cannot read a file under $HOME");
		check(confined(cannot_write, newfile) == 0, "cannot create a file under $HOME");
		check(access(newfile, F_OK) != 0, "nothing was created");
	}
	unlink(secret);
	unlink(newfile);
	printf("%s\n", failures ? "test_proxy_confine: FAILED" : "test_proxy_confine: ok");
	return failures ? 1 : 0;
}
