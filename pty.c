/*
 * pty.c - the terminal relay.
 *
 * A terminal handed to the command as an open file stays the caller's: the command could
 * read what is typed on it after the jail is gone from view, change its modes, and, as a
 * member of the caller's session, raise the nice value of the session's autogroup. So when
 * stdin, stdout or stderr is a terminal the command gets a pseudo-terminal of its own
 * instead, as its controlling terminal in a session of its own, and the monitor copies
 * bytes between the two, as ssh -t does: keystrokes go in only while the command runs, and
 * the caller's terminal is touched by nobody but agentjail.
 *
 * With keystrokes relayed, the caller's terminal is in raw mode and the pseudo-terminal has
 * the caller's modes: echo, line editing and Ctrl-C are the command's terminal's business
 * (Ctrl-C reaches the command's foreground job, not agentjail). Output only (stdin is not a
 * terminal): the caller's terminal keeps its modes and does the output processing, so the
 * pseudo-terminal's own (OPOST) is off and bytes pass unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "pty.h"
#include "util.h"

/* The caller's terminal the relay follows (its size, its modes): stdin, else stdout/err. */
static int term_fd = -1;

static bool is_term(int fd, dev_t rdev)
{
	struct stat st;

	return isatty(fd) && !fstat(fd, &st) && S_ISCHR(st.st_mode) && st.st_rdev == rdev;
}

/*
 * Which of stdin, stdout, stderr is the terminal to follow; -1 for none. A terminal on stdin
 * is relayed only from the foreground and when stdout is that terminal too:
 *  - raw mode from a background job would stop it (SIGTTOU) or, with SIGTTOU ignored,
 *    change the modes under the foreground job;
 *  - with stdout a pipe (agentjail -- cmd | less) another process of the pipeline may read
 *    the terminal, and the relay would take its keystrokes and change its modes.
 * Then there is no relay: the command keeps the caller's terminal and session, as any
 * member of a pipeline does.
 */
static int pick_term(void)
{
	struct stat st;

	if (isatty(STDIN_FILENO)) {
		if (fstat(STDIN_FILENO, &st) || tcgetpgrp(STDIN_FILENO) != getpgrp() ||
		    !is_term(STDOUT_FILENO, st.st_rdev))
			return -1;
		return STDIN_FILENO;
	}
	if (isatty(STDOUT_FILENO))
		return STDOUT_FILENO;
	if (isatty(STDERR_FILENO))
		return STDERR_FILENO;
	return -1;
}

/* With stdin or stdout closed at start, a new descriptor could take its number, and the
 * jail keeps fds 0-2: move it above them. */
static int above_stdio(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

void pty_open(struct pty *t)
{
	struct termios tio;
	struct winsize ws;
	struct stat st;
	int fd;

	memset(t, 0, sizeof(*t));
	t->master = t->slave = t->in = t->out = -1;
	term_fd = pick_term();
	if (term_fd < 0)
		return;
	if (fstat(term_fd, &st) || tcgetattr(term_fd, &tio))
		die_errno("cannot read the modes of the terminal on fd %d", term_fd);
	for (fd = 0; fd < 3; fd++)
		if (is_term(fd, st.st_rdev))
			t->map |= 1u << fd;
	t->master = above_stdio(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (t->master < 0 || grantpt(t->master) || unlockpt(t->master))
		die_errno("cannot open a pseudo-terminal for the command (/dev/ptmx); run it "
			  "with stdin, stdout and stderr not a terminal");
	/* The peer by descriptor, not by /dev/pts/N path: no name to race for. */
	t->slave = above_stdio(ioctl(t->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (t->slave < 0)
		die_errno("cannot open the command's pseudo-terminal (TIOCGPTPEER)");
	t->saved = tio;
	if (term_fd != STDIN_FILENO)
		tio.c_oflag &= ~(tcflag_t)OPOST; /* the caller's terminal still does it */
	if (tcsetattr(t->slave, TCSANOW, &tio))
		die_errno("cannot set the modes of the command's pseudo-terminal");
	if (!ioctl(term_fd, TIOCGWINSZ, &ws))
		(void)ioctl(t->master, TIOCSWINSZ, &ws);
	t->in = term_fd == STDIN_FILENO ? STDIN_FILENO : -1;
	t->out = t->map & 2 ? STDOUT_FILENO : STDERR_FILENO; /* one of them is the terminal */
}

void pty_winch(const struct pty *t)
{
	struct winsize ws;

	if (t->master >= 0 && term_fd >= 0 && !ioctl(term_fd, TIOCGWINSZ, &ws))
		(void)ioctl(t->master, TIOCSWINSZ, &ws);
}

/* Copy what the command's terminal printed to the caller's; false once no slave is open. */
static bool pump_out(struct pty *t, char *buf, size_t sz)
{
	ssize_t n = read(t->master, buf, sz);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR; /* EIO: every slave is closed */
	if (n == 0)
		return false;
	/* A caller's terminal that went away: drop the output, keep draining the jail's. */
	if (t->out >= 0 && write_all(t->out, buf, (size_t)n))
		t->out = -1;
	return true;
}

/*
 * The relay thread: output to the caller's terminal, keystrokes to the command's. The
 * master is non-blocking so that a command that does not read its input (a full input
 * queue) never stops its output from being relayed; stdin is read only when the last
 * keystrokes are through.
 */
static void *relay(void *arg)
{
	struct pty *t = arg;
	char out[16384], in[4096];
	size_t pend = 0, off = 0;
	bool in_open = t->in >= 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = t->master, .events = POLLIN | (pend ? POLLOUT : 0) },
			{ .fd = in_open && !pend ? t->in : -1, .events = POLLIN },
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !pump_out(t, out, sizeof(out)))
			break;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(t->in, in, sizeof(in));

			if (n > 0) {
				pend = (size_t)n;
				off = 0;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				in_open = false; /* the caller's terminal hung up */
			}
		}
		while (pend) {
			ssize_t w = write(t->master, in + off, pend);

			if (w < 0) {
				if (errno != EAGAIN && errno != EINTR)
					pend = 0; /* nobody to type to */
				break;
			}
			off += (size_t)w;
			pend -= (size_t)w;
		}
	}
	wipe(in, sizeof(in)); /* what was typed: a password, maybe */
	return NULL;
}

void pty_start(struct pty *t)
{
	sigset_t all, old;
	int fl, e;

	if (t->master < 0)
		return;
	close(t->slave); /* the jail holds its own copies now */
	t->slave = -1;
	fl = fcntl(t->master, F_GETFL);
	if (fl < 0 || fcntl(t->master, F_SETFL, fl | O_NONBLOCK))
		die_errno("pseudo-terminal: fcntl");
	if (t->in >= 0) {
		struct termios raw = t->saved;

		cfmakeraw(&raw);
		if (tcsetattr(t->in, TCSADRAIN, &raw))
			die_errno("cannot put the terminal in raw mode");
		t->raw = true;
	}
	/* Signals stay with the main thread (the monitor's handlers). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&t->thread, NULL, relay, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pty_finish(t);
		errno = e;
		die_errno("cannot start the terminal relay");
	}
	t->running = true;
}

void pty_finish(struct pty *t)
{
	if (t->master < 0)
		return;
	if (t->running) {
		pthread_join(t->thread, NULL);
		t->running = false;
	}
	if (t->raw) {
		(void)tcsetattr(t->in, TCSADRAIN, &t->saved);
		t->raw = false;
	}
}
