/* proxy.c - the egress proxy process (work in progress: not serving yet) */
#include "proxy.h"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

int proxy_start(struct policy *p, struct proxy *px)
{
	(void)p;
	px->pid = -1;
	px->ctl = -1;
	px->ca_pem = NULL;
	px->ca_pem_len = 0;
	msg("the network proxy is not built yet; use --net none");
	return -1;
}

int proxy_send_listener(int ctl, int listen_fd)
{
	(void)ctl;
	(void)listen_fd;
	errno = ENOSYS;
	return -1;
}

int proxy_stop(struct proxy *px)
{
	int st = 0;

	if (px->pid <= 0)
		return 0;
	kill(px->pid, SIGTERM);
	while (waitpid(px->pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}
