/* audit.c - JSON-lines audit log and exit counters (see audit.h, docs/proxy.md) */
#include "audit.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define AUDIT_LINE_MAX   8192
#define AUDIT_DENIED_MAX 8 /* distinct denied hosts named in the summary */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static uint64_t n_allow, n_deny, n_inject, n_exfil, n_error;
static char denied[AUDIT_DENIED_MAX][96];
static size_t n_denied_names, n_denied_more;

int audit_open(const char *path)
{
	if (!path)
		return 0;
	struct stat st;

	/* Not through a link (a planted one would aim our appends at ~/.bashrc), and only a
	 * regular file of ours. */
	log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
		      0600);
	if (log_fd < 0) {
		msg("cannot open the audit log %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(log_fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		msg("the audit log %s is not a regular file owned by you; refusing it", path);
		close(log_fd);
		log_fd = -1;
		return -1;
	}
	return 0;
}

struct jbuf {
	char *b;
	size_t n, cap;
	bool full;
};

static void jraw(struct jbuf *j, const char *s, size_t len)
{
	if (j->full || j->n + len >= j->cap) {
		j->full = true;
		return;
	}
	memcpy(j->b + j->n, s, len);
	j->n += len;
}

static void jfmt(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jfmt(struct jbuf *j, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (j->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(j->b + j->n, j->cap - j->n, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= j->cap - j->n) {
		j->full = true;
		return;
	}
	j->n += (size_t)n;
}

/* A JSON string (or null), at most 1024 bytes of it; control and non-ASCII bytes escaped
 * so that the log is valid JSON whatever a client sent. */
static void jstr(struct jbuf *j, const char *key, const char *s)
{
	jfmt(j, ",\"%s\":", key);
	if (!s) {
		jraw(j, "null", 4);
		return;
	}
	jraw(j, "\"", 1);
	for (size_t i = 0; i < 1024 && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };

			jraw(j, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			jfmt(j, "\\u%04x", c);
		} else {
			jraw(j, (const char *)&c, 1);
		}
	}
	jraw(j, "\"", 1);
}

static const char *decision_name(enum audit_decision d)
{
	switch (d) {
	case AUDIT_ALLOW: return "allow";
	case AUDIT_DENY: return "deny";
	case AUDIT_INJECT: return "inject";
	case AUDIT_EXFIL: return "exfil";
	default: return "error";
	}
}

static void note_denied(const char *host)
{
	if (!host)
		return;
	for (size_t i = 0; i < n_denied_names; i++)
		if (strcmp(denied[i], host) == 0)
			return;
	if (n_denied_names < AUDIT_DENIED_MAX)
		snprintf(denied[n_denied_names++], sizeof(denied[0]), "%s", host);
	else
		n_denied_more++;
}

void audit_log(const struct audit_rec *r)
{
	char line[AUDIT_LINE_MAX];
	struct jbuf j = { line, 0, sizeof(line) - 2, false };
	struct timespec ts;
	struct tm tm;

	pthread_mutex_lock(&lock);
	switch (r->decision) {
	case AUDIT_ALLOW: n_allow++; break;
	case AUDIT_DENY: n_deny++; note_denied(r->host); break;
	case AUDIT_INJECT: n_inject++; break;
	case AUDIT_EXFIL: n_exfil++; note_denied(r->host); break;
	default: n_error++; break;
	}
	pthread_mutex_unlock(&lock);
	if (log_fd < 0)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	jfmt(&j, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"conn\":%llu",
	     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	     ts.tv_nsec / 1000000, (unsigned long long)r->conn);
	jstr(&j, "method", r->method);
	jstr(&j, "host", r->host);
	jfmt(&j, ",\"port\":%d", r->port);
	jstr(&j, "addr", r->addr);
	jstr(&j, "path", r->path);
	jstr(&j, "decision", decision_name(r->decision));
	jfmt(&j, ",\"status\":%d", r->status);
	jstr(&j, "rule", r->rule);
	jstr(&j, "reason", r->reason);
	jstr(&j, "secret", r->secret);
	jfmt(&j, ",\"bytes_up\":%llu,\"bytes_down\":%llu,\"ms\":%.3f}",
	     (unsigned long long)r->bytes_up, (unsigned long long)r->bytes_down, r->ms);
	if (j.full) {
		/* never a truncated JSON line: a minimal record instead */
		j.full = false;
		j.n = 0;
		jfmt(&j, "{\"conn\":%llu,\"decision\":\"%s\",\"status\":%d,\"truncated\":true}",
		     (unsigned long long)r->conn, decision_name(r->decision), r->status);
	}
	line[j.n++] = '\n';
	/* one write(2) per record on an O_APPEND fd: lines never interleave */
	if (write_all(log_fd, line, j.n) < 0) {
		/* a full disk must not stop the proxy; say it once */
		static bool warned;

		if (!warned) {
			warned = true;
			msg("cannot write the audit log: %s", strerror(errno));
		}
	}
}

void audit_summary(void)
{
	char line[1024];
	struct jbuf j = { line, 0, sizeof(line), false };

	pthread_mutex_lock(&lock);
	jfmt(&j, "proxy: %llu allowed, %llu denied", (unsigned long long)n_allow,
	     (unsigned long long)n_deny);
	if (n_denied_names) {
		jraw(&j, " (", 2);
		for (size_t i = 0; i < n_denied_names; i++)
			jfmt(&j, "%s%s", i ? ", " : "", denied[i]);
		if (n_denied_more)
			jfmt(&j, " and %zu more", n_denied_more);
		jraw(&j, ")", 1);
	}
	jfmt(&j, ", %llu secrets injected, %llu exfiltration attempts",
	     (unsigned long long)n_inject, (unsigned long long)n_exfil);
	if (n_error)
		jfmt(&j, ", %llu errors", (unsigned long long)n_error);
	pthread_mutex_unlock(&lock);
	line[j.n < sizeof(line) ? j.n : sizeof(line) - 1] = 0;
	msg("%s", line);
}
