/*
 * pty.c - the terminal relay, and what else the command gets for stdin, stdout, stderr.
 *
 * The command's stdio is never a descriptor it could turn into more than it was given:
 * /proc/self/fd/N reopens the file behind N with whatever access its permissions allow,
 * through the caller's mount, not the jail's view. So a directory or an O_PATH descriptor
 * on 0-2 is refused (openat below it reaches the whole host tree), and a file or device
 * on stdin reaches the command through a pipe the monitor fills (else `cmd < notes.txt`
 * could rewrite notes.txt). Files on stdout and stderr are passed as they are: the command
 * may write them anyway (it could also read them back).
 *
 * A terminal handed to the command as an open file stays the caller's: the command could
 * read what is typed on it, change its modes, and, as a member of the caller's session,
 * raise the nice value of the session's autogroup. So the command never gets a descriptor
 * of the caller's terminal. When stdout or stderr is one, the command gets a pseudo-terminal
 * of its own instead and the monitor copies its output across; when stdin is one, the
 * monitor relays keystrokes too (as ssh -t does) if it can, else the command's stdin is
 * /dev/null. The command always runs in a session of its own.
 *
 * Keystrokes are relayed only while agentjail is the terminal's foreground job and stdout
 * is not a pipe or socket:
 *  - raw mode from a background job would stop it (SIGTTOU) or, with SIGTTOU ignored,
 *    change the modes under the foreground job;
 *  - with stdout a pipe (agentjail -- cmd | less) another member of the pipeline may read
 *    the terminal, and the relay would take its keystrokes and change its modes.
 *
 * With keystrokes relayed, the caller's terminal is in raw mode and the pseudo-terminal has
 * the caller's modes: echo, line editing and Ctrl-C are the command's terminal's business,
 * and it is the command's controlling terminal (job control inside). Output only, the
 * caller's terminal keeps its modes and does the output processing, so the pseudo-terminal's
 * own (OPOST) is off and bytes pass unchanged; the command has no controlling terminal, so
 * a password prompt on /dev/tty fails at once instead of waiting for keystrokes.
 *
 * The monitor keeps its own copy of the slave open until the jail is gone, so the relay
 * never ends early (a command may close its stdio and reopen /dev/tty); then it drains the
 * master until EIO, or until it has been silent for DRAIN_MS, since a slave descriptor can
 * outlive every process of the jail in flight in a Unix socket until the kernel collects it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "pty.h"
#include "util.h"

#define DRAIN_MS 500

/* The caller's terminal the relay follows (its size, its modes): stdin, else stdout/err. */
static int term_fd = -1;

/* A pipe or socket on stdout: agentjail is one member of a pipeline. */
static bool piped(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

/*
 * A terminal not in canonical mode is another reader's already (a second agentjail started
 * by the same script, an editor): relaying it too would split its keystrokes, and restoring
 * "its modes" would restore the other's raw ones.
 */
static bool relay_keys(void)
{
	struct termios tio;

	return isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp() &&
	       !piped(STDOUT_FILENO) && !tcgetattr(STDIN_FILENO, &tio) && (tio.c_lflag & ICANON);
}

static bool writable(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
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

static bool reopenable(int fd);

/* Refuse a descriptor that opens the host's tree, or a file the command would get more
 * access to than it was given (see the top of this file). */
void pty_check_stdio(void)
{
	static const char *const name[] = { "stdin", "stdout", "stderr" };
	struct stat st;

	for (int fd = 0; fd < 3; fd++) {
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0)
			continue; /* closed */
		if ((fl & O_PATH) || (!fstat(fd, &st) && S_ISDIR(st.st_mode)))
			die("%s is a directory or an O_PATH descriptor: the jailed command could open "
			    "the host's files through it; redirect it", name[fd]);
		if (fd > 0 && (fl & O_ACCMODE) == O_RDONLY && reopenable(fd))
			die("%s is a file open for reading only: the jailed command could reopen it "
			    "for writing; redirect it", name[fd]);
	}
}

/* null, zero, full, random, urandom: nothing to gain by reopening them */
static bool harmless_dev(dev_t rdev)
{
	if (major(rdev) != 1)
		return false;
	switch (minor(rdev)) {
	case 3: case 5: case 7: case 8: case 9:
		return true;
	}
	return false;
}

/* A file or device the command could reopen for writing (not a pipe, socket or terminal,
 * and not null, zero, full, random or urandom). */
static bool reopenable(int fd)
{
	struct stat st;

	if (fstat(fd, &st) || isatty(fd))
		return false;
	if (S_ISCHR(st.st_mode))
		return !harmless_dev(st.st_rdev);
	return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

static void open_feed(struct pty *t)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		die_errno("pipe for stdin");
	t->feed_r = above_stdio(p[0]);
	t->feed_w = above_stdio(p[1]);
	if (t->feed_r < 0 || t->feed_w < 0 || fcntl(t->feed_w, F_SETFL, O_NONBLOCK))
		die_errno("pipe for stdin");
}

void pty_open(struct pty *t)
{
	struct termios tio;
	struct winsize ws;
	bool keys = relay_keys();

	memset(t, 0, sizeof(*t));
	t->master = t->slave = t->in = t->out = -1;
	t->wake[0] = t->wake[1] = t->feed_r = t->feed_w = -1;
	if (reopenable(STDIN_FILENO))
		open_feed(t);
	/* any terminal, not only the one followed: /dev/tty has a device number of its own */
	t->map = (keys ? 1u : 0) | (isatty(STDOUT_FILENO) ? 2u : 0) | (isatty(STDERR_FILENO) ? 4u : 0);
	t->null_stdin = isatty(STDIN_FILENO) && !keys;
	term_fd = keys ? STDIN_FILENO : (t->map & 2) ? STDOUT_FILENO : STDERR_FILENO;
	if (!t->map)
		return;
	if (tcgetattr(term_fd, &tio))
		die_errno("cannot read the modes of the terminal on fd %d", term_fd);
	t->master = above_stdio(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (t->master < 0 || grantpt(t->master) || unlockpt(t->master))
		die_errno("cannot open a pseudo-terminal for the command (/dev/ptmx); run it "
			  "with stdin, stdout and stderr not a terminal");
	/* The peer by descriptor, not by /dev/pts/N path: no name to race for. */
	t->slave = above_stdio(ioctl(t->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (t->slave < 0)
		die_errno("cannot open the command's pseudo-terminal (TIOCGPTPEER)");
	t->saved = tio;
	if (!keys)
		tio.c_oflag &= ~(tcflag_t)OPOST; /* the caller's terminal still does it */
	if (tcsetattr(t->slave, TCSANOW, &tio))
		die_errno("cannot set the modes of the command's pseudo-terminal");
	if (!ioctl(term_fd, TIOCGWINSZ, &ws))
		(void)ioctl(t->master, TIOCSWINSZ, &ws);
	t->in = keys ? STDIN_FILENO : -1;
	if (t->map & 2)
		t->out = STDOUT_FILENO;
	else if (t->map & 4)
		t->out = STDERR_FILENO;
	else if (writable(STDIN_FILENO))
		t->out = STDIN_FILENO; /* only the echo of what is typed: back where it was typed */
}

void pty_winch(const struct pty *t)
{
	struct winsize ws;

	if (t->master >= 0 && !ioctl(term_fd, TIOCGWINSZ, &ws))
		(void)ioctl(t->master, TIOCSWINSZ, &ws);
}

/* All of buf to the caller's terminal, which its owner may have made non-blocking. */
static int write_out(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -1;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
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
	if (t->out >= 0 && write_out(t->out, buf, (size_t)n))
		t->out = -1;
	return true;
}

/* Keystrokes from the caller's terminal; false once it hung up. Never blocks: the raw mode
 * has VMIN 0, so another reader taking the bytes first leaves read() with 0, not waiting. */
static bool read_keys(struct pty *t, char *buf, size_t sz, size_t *pend)
{
	ssize_t n = read(t->in, buf, sz);

	if (n > 0)
		*pend = (size_t)n;
	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

/* Keystrokes to the command's terminal, as far as its input queue takes them. */
static void push_keys(struct pty *t, const char *buf, size_t *off, size_t *pend)
{
	while (*pend) {
		ssize_t w = write(t->master, buf + *off, *pend);

		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				*pend = 0; /* nobody to type to */
			return;
		}
		*off += (size_t)w;
		*pend -= (size_t)w;
	}
	*off = 0;
}

/*
 * The relay thread: output to the caller's terminal, keystrokes to the command's. The
 * master is non-blocking so that a command that does not read its input (a full input
 * queue) never stops its output from being relayed; stdin is read only when the last
 * keystrokes are through. After the wake-up (the jail is gone): drain, then stop.
 */
static void *relay(void *arg)
{
	struct pty *t = arg;
	char out[16384], in[4096];
	size_t pend = 0, off = 0;
	bool keys = t->in >= 0, ending = false;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = t->master, .events = POLLIN | (pend ? POLLOUT : 0) },
			{ .fd = keys && !pend && !ending ? t->in : -1, .events = POLLIN },
			{ .fd = ending ? -1 : t->wake[0], .events = POLLIN },
		};
		int n = poll(p, 3, ending ? DRAIN_MS : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0)
			break; /* silent since the jail ended: a slave copy left in flight */
		if (p[2].revents)
			ending = true;
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !pump_out(t, out, sizeof(out)))
			break;
		/*
		 * A hang-up ends the keystrokes once what was typed before it is read, and is
		 * passed to the command: the session leader the kernel told may be the caller's
		 * shell, which need not pass it on (TIOCSIG cannot send SIGHUP).
		 */
		if (p[1].revents && (!read_keys(t, in, sizeof(in), &pend) ||
				     (!pend && (p[1].revents & (POLLHUP | POLLERR | POLLNVAL))))) {
			keys = false;
			(void)kill(getpid(), SIGHUP); /* the monitor forwards it to the jail */
		}
		push_keys(t, in, &off, &pend);
	}
	wipe(in, sizeof(in)); /* what was typed: a password, maybe */
	return NULL;
}

/*
 * The feeder thread: the file on stdin into the command's pipe, until its end, or the
 * wake-up (the jail is gone; a reader in flight in a Unix socket must not hold it). It
 * waits for stdin to be readable too, since a device's read may block. What it read and
 * did not pass on is left in t->feed_left for pty_finish().
 */
static void *feed(void *arg)
{
	struct pty *t = arg;
	char buf[65536];
	size_t len = 0, off = 0;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = len ? t->feed_w : STDIN_FILENO, .events = len ? POLLOUT : POLLIN },
			{ .fd = t->wake[0], .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!p[0].revents)
			continue;
		if (!len) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0)
				msg("stdin: %s; the command reads end of file", strerror(errno));
			if (n <= 0)
				break;
			len = (size_t)n;
			off = 0;
			continue;
		}
		n = write(t->feed_w, buf + off, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break; /* the monitor holds a reader: cannot be EPIPE */
		if (n > 0) {
			off += (size_t)n;
			len -= (size_t)n;
		}
	}
	t->feed_left = len;
	close(t->feed_w); /* the command's end of file */
	t->feed_w = -1;
	return NULL;
}

/*
 * A file on stdin shares its offset with the caller (while read l; do agentjail ...; done
 * <list): move it back over what the feeder read and the command did not, as a command
 * reading the file itself would have left it.
 */
static void unread_feed(struct pty *t)
{
	struct stat st;
	int queued = 0;

	if (t->feed_r < 0)
		return;
	if (!fstat(STDIN_FILENO, &st) && S_ISREG(st.st_mode) &&
	    !ioctl(t->feed_r, FIONREAD, &queued) && queued >= 0)
		(void)lseek(STDIN_FILENO, -(off_t)(t->feed_left + (size_t)queued), SEEK_CUR);
	close(t->feed_r);
	t->feed_r = -1;
}

static void start_thread(pthread_t *th, void *(*fn)(void *), struct pty *t)
{
	sigset_t all, old;
	int e;

	/* Signals stay with the main thread (the monitor's handlers). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(th, NULL, fn, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pty_restore(t);
		errno = e;
		die_errno("cannot start the terminal relay");
	}
}

void pty_start(struct pty *t)
{
	int fl;

	if (t->master < 0 && t->feed_w < 0)
		return;
	if (pipe2(t->wake, O_CLOEXEC | O_NONBLOCK))
		die_errno("cannot set up the stdio relay");
	if (t->feed_w >= 0) {
		/* feed_r stays open here: what is left in the pipe at the end is counted */
		start_thread(&t->feeder, feed, t);
		t->feeding = true;
	}
	if (t->master < 0)
		return;
	fl = fcntl(t->master, F_GETFL);
	if (fl < 0 || fcntl(t->master, F_SETFL, fl | O_NONBLOCK))
		die_errno("cannot set up the terminal relay");
	if (t->in >= 0) {
		struct termios raw = t->saved;

		cfmakeraw(&raw);
		raw.c_cc[VMIN] = 0; /* read() never waits: see read_keys() */
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(t->in, TCSADRAIN, &raw) || tcgetattr(t->in, &t->rawmodes))
			die_errno("cannot put the terminal in raw mode");
		t->raw = true;
	}
	start_thread(&t->thread, relay, t);
	t->running = true;
}

/* Same modes, as far as a terminal's settings go (struct termios may have padding). */
static bool same_modes(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
	       a->c_lflag == b->c_lflag && !memcmp(a->c_cc, b->c_cc, sizeof(a->c_cc));
}

/* The caller's modes back, unless someone set others since: those are theirs to keep. */
void pty_restore(struct pty *t)
{
	struct termios now;

	if (t->raw && !tcgetattr(t->in, &now) && same_modes(&now, &t->rawmodes))
		(void)tcsetattr(t->in, TCSADRAIN, &t->saved);
	t->raw = false;
}

void pty_finish(struct pty *t)
{
	if (t->slave >= 0)
		close(t->slave); /* the last copy, unless one is in flight somewhere */
	t->slave = -1;
	/* an empty pipe: cannot fail; without it the relay still ends at EIO */
	if ((t->running || t->feeding) && write(t->wake[1], "", 1) != 1)
		msg("stdio relay: %s", strerror(errno));
	if (t->feeding)
		pthread_join(t->feeder, NULL);
	t->feeding = false;
	unread_feed(t);
	if (t->running)
		pthread_join(t->thread, NULL);
	t->running = false;
	pty_restore(t);
}
