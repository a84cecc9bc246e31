/* pty.h - the terminal relay: the command gets a pseudo-terminal of its own, never the caller's */
#ifndef AGENTJAIL_PTY_H
#define AGENTJAIL_PTY_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <termios.h>

struct pty {
	int master;             /* the monitor's end, -1 when there is no relay */
	int slave;              /* the command's terminal; the monitor closes it after the spawn */
	unsigned map;           /* bit N: the command's fd N (0..2) is the slave */
	int in;                 /* the caller's terminal to read keystrokes from, or -1 */
	int out;                /* where its output goes (stdout or stderr); -1 once that failed */
	bool raw;               /* the caller's terminal is in raw mode: restore it */
	struct termios saved;   /* its modes before */
	pthread_t thread;
	bool running;
};

/*
 * Decide whether the command needs a relay (one of stdin, stdout, stderr is a terminal) and
 * set it up: a new pseudo-terminal with the caller's terminal modes and window size. With no
 * terminal, t->master is -1 and nothing else happens. A terminal on stdin is relayed only in
 * the foreground and with stdout on it too; otherwise it is left as it is (no relay: the
 * command keeps the caller's terminal and job control, as before; see pty.c). Dies with the
 * reason if a pseudo-terminal is needed and cannot be had.
 */
void pty_open(struct pty *t);

/* After the spawn: close the monitor's copy of the slave, put the caller's terminal in raw
 * mode (if keystrokes are relayed) and start the relay thread. Dies on failure. */
void pty_start(struct pty *t);

/* Wait until the command's terminal is closed by every process of the jail (all its output
 * relayed), then give the caller's terminal its modes back. */
void pty_finish(struct pty *t);

/* The caller's terminal changed size (SIGWINCH): pass it on. Async-signal-safe. */
void pty_winch(const struct pty *t);

#endif
