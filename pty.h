/* pty.h - the terminal relay: the command gets a pseudo-terminal of its own, never the caller's */
#ifndef AGENTJAIL_PTY_H
#define AGENTJAIL_PTY_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <termios.h>

struct pty {
	int master;           /* the monitor's end, -1 when there is no relay */
	int slave;            /* the command's terminal; the monitor's copy closes at the end */
	unsigned map;         /* bit N: the command's fd N (0..2) is the slave */
	bool null_stdin;      /* stdin is a terminal whose keystrokes are not relayed */
	int in;               /* the caller's terminal to read keystrokes from, or -1 */
	int out;              /* where the command's output goes; -1 once that failed */
	bool raw;             /* the caller's terminal is in raw mode: restore it */
	struct termios saved; /* its modes before */
	struct termios rawmodes; /* as agentjail set them */
	int wake[2];          /* tells the relay thread the jail is gone */
	pthread_t thread;
	bool running;
	int feed_r, feed_w;   /* a file on stdin goes to the command through this pipe, or -1 */
	size_t feed_left;     /* read from the file, not passed on */
	pthread_t feeder;
	bool feeding;
};

/*
 * Decide what the command gets for each of stdin, stdout, stderr (see pty.c): for a
 * terminal, its own pseudo-terminal (opened here, with the caller's modes and window size)
 * or /dev/null; for a file or device on stdin, a pipe (t->feed_r). With no terminal,
 * t->master is -1. Dies with the reason if one of them is a directory or an O_PATH
 * descriptor, or if a pseudo-terminal is needed and cannot be had.
 */
void pty_open(struct pty *t);

/* After the spawn: put the caller's terminal in raw mode (if keystrokes are relayed) and
 * start the relay thread. Dies on failure. */
void pty_start(struct pty *t);

/* Once the jail is gone: relay the command's last output, stop the relay, and give the
 * caller's terminal its modes back. */
void pty_finish(struct pty *t);

/* Die, naming it, if stdin, stdout or stderr is a directory, an O_PATH descriptor, or a
 * file open for reading only on stdout/stderr: the command could reopen it for more. */
void pty_check_stdio(void);

/* Only the caller's terminal modes back (for a monitor about to die). */
void pty_restore(struct pty *t);

/* The caller's terminal changed size (SIGWINCH): pass it on. Async-signal-safe. */
void pty_winch(const struct pty *t);

#endif
