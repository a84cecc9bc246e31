/* jail.h - build the jail (namespaces, filesystem view, init) and run the command in it */
#ifndef AGENTJAIL_JAIL_H
#define AGENTJAIL_JAIL_H

#include <stddef.h>
#include <sys/types.h>

#include "policy.h"

struct jail {
	struct policy *p;
	char **envp;        /* the command's environment, built by the monitor */
	const char *ca_pem; /* run CA (PEM) to trust, or NULL */
	size_t ca_pem_len;
	int proxy_ctl;      /* control socket to hand the listener to, or -1 */
	char *exe_dir;      /* directory of the resolved command to bind read-only, or NULL */
	const char *user;   /* the caller's login name, for the jail's /etc/passwd */
	uid_t uid;          /* the caller, mapped to itself */
	gid_t gid;
	int ready_fd;       /* to the monitor: "1" once the command runs, then its exit code */
	int alive_fd;       /* init's end of the monitor-alive pipe; one byte on it is the go */
	char **wipe_argv;   /* agentjail's argv, overwritten in init */
	int tty_fd;         /* the command's own pseudo-terminal (pty.c), or -1 */
	unsigned tty_map;   /* bit N: the command's fd N is tty_fd */
	bool null_stdin;    /* the command's stdin is /dev/null (a terminal not relayed) */
	int stdin_fd;       /* or this pipe (a file on stdin, fed by the monitor), or -1 */
};

/*
 * Clone init into new user, mount, pid, net, ipc, uts and cgroup namespaces. Returns
 * init's pid in the monitor; init builds the jail, runs the command, and exits with the
 * command's status (128+N for signal N), which it first writes (one byte) to ready_fd once
 * every process of the jail but itself is gone. -1 if the kernel refused the namespaces.
 */
pid_t jail_spawn(struct jail *j);

/*
 * Diagnose why namespaces cannot be built here; writes a one-paragraph reason and fix
 * into buf. Returns 0 if a jail can be built.
 */
int jail_diagnose(char *buf, size_t len);

/* The host directories the jail binds read-only whatever the profile. */
extern const char *const jail_system_dirs[];

#endif
