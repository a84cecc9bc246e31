/*
 * policy.c - the effective policy of one run: profile files (INI, parsed with inih),
 * layering (built-in default, --profile with inherit, the workspace's .agentjail.ini
 * tighten-only), rule adders for the CLI, host pattern matching, explain, and the
 * profile listing. See docs/profiles.md for the language.
 *
 * A profile file is parsed completely (syntax, sections, keys) before any of its rules is
 * applied; its inherited profiles are applied first, then its own lines in order. Any
 * error is fatal for the run (policy_load_profiles exits 125): never a half-applied
 * policy reaches the jail.
 */
#include "policy.h"
#include "jail.h"
#include "net.h"
#include "profiles.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROFILE_MAX_BYTES (1024 * 1024) /* a profile is a few hundred bytes; bound reads */
#define INHERIT_DEPTH_MAX 16
#define HOST_MAX          253
#define ENV_VALUE_MAX     65536
#define LIST_ITEMS_MAX    256 /* items on one list line */
#define NAME_MAX_LEN      64  /* profile and secret names */
#define WORKSPACE_FILE    ".agentjail.ini"
#define SYSCONFDIR        "/etc/agentjail"

static const char widen_hint[] =
	"a workspace profile may only tighten (deny, hide, drop a secret, network = none, "
	"ro or overlay over what is already visible); trust this workspace with "
	"--trust-workspace or 'trust = DIR' in config.ini";

/* ---------------------------------------------------------------- small helpers */

static void set_origin(char dst[ORIGIN_MAX], const char *origin)
{
	size_t n = strlen(origin);

	if (n < ORIGIN_MAX) {
		memcpy(dst, origin, n + 1);
		return;
	}
	/* Keep the tail: the file name and line number matter most. */
	memcpy(dst, "...", 3);
	memcpy(dst + 3, origin + n - (ORIGIN_MAX - 4), ORIGIN_MAX - 4 + 1);
}

static bool valid_env_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 255 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* Profile names: letters, digits, '_', '-', '.'; not starting with '.'. */
static bool valid_profile_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
		return pw->pw_dir;
	return NULL;
}

/* $XDG_CONFIG_HOME/agentjail or ~/.config/agentjail (malloc'd), or NULL. */
static char *user_dir(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	const char *h;

	if (x && x[0] == '/')
		return xasprintf("%s/agentjail", x);
	h = home_dir();
	return h ? xasprintf("%s/.config/agentjail", h) : NULL;
}

/* /etc/agentjail; AGENTJAIL_SYSCONFDIR overrides it (tests, relocated installs). */
static const char *etc_dir(void)
{
	const char *e = getenv("AGENTJAIL_SYSCONFDIR");

	return e && e[0] == '/' ? e : SYSCONFDIR;
}

static void strvec_free(void *vec)
{
	VEC(char *) *v = vec;
	size_t i;

	for (i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = v->cap = 0;
}

/*
 * Split a list value on commas and blanks into at most LIST_ITEMS_MAX items (pointers into
 * buf, which is modified). Returns the count, or -1 when there are too many.
 */
static int split_list(char *buf, char **items)
{
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (n == LIST_ITEMS_MAX)
			return -1;
		items[n++] = tok;
	}
	return n;
}

/* Read a whole regular file of at most PROFILE_MAX_BYTES; NUL-terminated. 0 or -1/errno. */
static int read_small_file(const char *path, bool nofollow, char **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0));
	struct stat st;
	char *buf;
	size_t len = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > PROFILE_MAX_BYTES) {
		close(fd);
		errno = S_ISDIR(st.st_mode) ? EISDIR : !S_ISREG(st.st_mode) ? EINVAL : EFBIG;
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* ---------------------------------------------------------------- paths */

static bool path_under(const char *child, const char *parent)
{
	size_t n = strlen(parent);

	if (!strcmp(parent, "/"))
		return child[0] == '/' && child[1] != '\0';
	return !strncmp(child, parent, n) && child[n] == '/';
}

static bool path_at_or_under(const char *child, const char *parent)
{
	return !strcmp(child, parent) || path_under(child, parent);
}

/* Does s start with the variable v ("$HOME" or "${HOME}") followed by '/' or the end? */
static const char *var_prefix(const char *s, const char *v)
{
	size_t n = strlen(v);

	if (s[0] != '$')
		return NULL;
	if (!strncmp(s + 1, v, n) && (s[1 + n] == '/' || s[1 + n] == '\0'))
		return s + 1 + n;
	if (s[1] == '{' && !strncmp(s + 2, v, n) && s[2 + n] == '}' &&
	    (s[3 + n] == '/' || s[3 + n] == '\0'))
		return s + 3 + n;
	return NULL;
}

static const char *workspace_of(const struct policy *p, char *buf, size_t len)
{
	if (p->workspace && p->workspace[0] == '/')
		return p->workspace;
	return getcwd(buf, len);
}

/*
 * Expand ~, $HOME, $WORKSPACE at the start of in, require an absolute path, and normalise
 * it: no "." or ".." components (refused, never resolved: the jail resolves links itself),
 * no repeated or trailing '/'. 0, or -1 with *err set.
 */
static int expand_path(const struct policy *p, const char *in, char **out, const char **err)
{
	char wsbuf[PATH_MAX], joined[PATH_MAX], res[PATH_MAX];
	const char *base = NULL, *rest = in, *c;
	size_t o = 0;
	int n;

	if (in[0] == '\0') {
		*err = "empty path";
		return -1;
	}
	if (in[0] == '~') {
		if (in[1] != '\0' && in[1] != '/') {
			*err = "~USER is not supported; write the absolute path";
			return -1;
		}
		base = home_dir();
		rest = in + 1;
		if (!base) {
			*err = "~ used but HOME is not set";
			return -1;
		}
	} else if ((c = var_prefix(in, "HOME"))) {
		base = home_dir();
		rest = c;
		if (!base) {
			*err = "$HOME used but HOME is not set";
			return -1;
		}
	} else if ((c = var_prefix(in, "WORKSPACE"))) {
		base = workspace_of(p, wsbuf, sizeof(wsbuf));
		rest = c;
		if (!base) {
			*err = "$WORKSPACE used but the workspace is unknown";
			return -1;
		}
	} else if (in[0] == '$') {
		*err = "only ~, $HOME and $WORKSPACE are expanded at the start of a path";
		return -1;
	} else if (in[0] != '/') {
		*err = "relative path: paths must be absolute or start with ~, $HOME or $WORKSPACE";
		return -1;
	}
	n = snprintf(joined, sizeof(joined), "%s%s", base ? base : "", rest);
	if (n < 0 || (size_t)n >= sizeof(joined)) {
		*err = "path too long";
		return -1;
	}
	for (c = joined; *c;) {
		const char *e;
		size_t len;

		while (*c == '/')
			c++;
		if (!*c)
			break;
		e = strchr(c, '/');
		len = e ? (size_t)(e - c) : strlen(c);
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			*err = "'.' and '..' are not allowed in paths";
			return -1;
		}
		res[o++] = '/';
		memcpy(res + o, c, len);
		o += len;
		c += len;
	}
	if (o == 0)
		res[o++] = '/';
	res[o] = '\0';
	*out = xstrdup(res);
	return 0;
}

/* ---------------------------------------------------------------- mounts */

static void mount_remove_at(struct policy *p, size_t i)
{
	free(p->mounts.v[i].path);
	memmove(&p->mounts.v[i], &p->mounts.v[i + 1],
		(p->mounts.n - i - 1) * sizeof(p->mounts.v[0]));
	p->mounts.n--;
}

/*
 * Insert a rule (taking ownership of path), keeping the order the jail applies them in:
 * a rule for a path comes before every rule for a path below it. A rule for the same
 * path replaces the earlier one; hiding a directory drops every rule below it (hidden
 * means hidden, whatever was bound inside).
 */
static void mount_insert(struct policy *p, char *path, enum mount_mode mode, bool optional,
			 const char *origin)
{
	struct mount_rule *m;
	size_t i, at;

	for (i = 0; i < p->mounts.n;) {
		const char *q = p->mounts.v[i].path;

		if (!strcmp(q, path) || (mode == MOUNT_HIDE && path_under(q, path)))
			mount_remove_at(p, i);
		else
			i++;
	}
	for (at = 0; at < p->mounts.n; at++)
		if (path_under(p->mounts.v[at].path, path))
			break;
	VEC_PUSH(p->mounts);
	memmove(&p->mounts.v[at + 1], &p->mounts.v[at],
		(p->mounts.n - 1 - at) * sizeof(p->mounts.v[0]));
	m = &p->mounts.v[at];
	memset(m, 0, sizeof(*m));
	m->path = path;
	m->mode = mode;
	m->optional = optional;
	set_origin(m->origin, origin);
}

int policy_add_mount(struct policy *p, const char *path, enum mount_mode mode, bool optional,
		     const char *origin, const char **err)
{
	char *norm;

	if (mode != MOUNT_RO && mode != MOUNT_RW && mode != MOUNT_HIDE && mode != MOUNT_OVERLAY) {
		*err = "bad mount mode";
		return -1;
	}
	if (expand_path(p, path, &norm, err) < 0)
		return -1;
	mount_insert(p, norm, mode, optional, origin);
	return 0;
}

static const char *mode_name(enum mount_mode m)
{
	switch (m) {
	case MOUNT_RO:
		return "ro";
	case MOUNT_RW:
		return "rw";
	case MOUNT_HIDE:
		return "hide";
	case MOUNT_OVERLAY:
		return "overlay";
	}
	return "?";
}

/*
 * The jail opens a bind's source on the host following links, so a link planted in the
 * workspace (or left in a read-write directory by an earlier run) could make an untrusted
 * "ro = $WORKSPACE/link" show any host path. Refuse such a rule when any existing
 * component of the path is a symbolic link.
 */
static const char *untrusted_link_check(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), i;
	struct stat st;

	if (n >= sizeof(buf))
		return "the path is too long to check";
	memcpy(buf, path, n + 1);
	for (i = 1; i <= n; i++) {
		char c = buf[i];
		int r;

		if (c != '/' && c != '\0')
			continue;
		buf[i] = '\0';
		r = lstat(buf, &st);
		buf[i] = c;
		if (r < 0 && (errno == ENOENT || errno == ENOTDIR))
			return NULL; /* nothing there: nothing a link could redirect */
		if (r < 0)
			return "it cannot be checked for symbolic links";
		if (S_ISLNK(st.st_mode))
			return "it goes through a symbolic link, which could point anywhere";
	}
	return NULL;
}

/*
 * May an untrusted profile add this rule? Hiding always narrows. ro and overlay narrow
 * only what is already visible: the most specific rule at or above the path (or the
 * workspace, bound read-write by the jail) must exist and must not hide it. rw widens.
 */
static const char *untrusted_mount_check(const struct policy *p, const char *path,
					 enum mount_mode mode)
{
	char wsbuf[PATH_MAX];
	const char *ws = workspace_of(p, wsbuf, sizeof(wsbuf));
	const struct mount_rule *best = NULL;
	size_t i;

	if (mode == MOUNT_HIDE)
		return NULL;
	if (mode == MOUNT_RW)
		return "it makes a path writable";
	for (i = 0; i < p->mounts.n; i++) {
		const struct mount_rule *m = &p->mounts.v[i];

		if (path_at_or_under(path, m->path) &&
		    (!best || strlen(m->path) > strlen(best->path)))
			best = m;
	}
	if (ws && path_at_or_under(path, ws) && (!best || strlen(best->path) <= strlen(ws)))
		return untrusted_link_check(path); /* inside the workspace, no closer rule */
	if (!best)
		return "it makes a path visible that the jail does not show";
	if (best->mode == MOUNT_HIDE)
		return "it makes a hidden path visible";
	return untrusted_link_check(path);
}

/* ---------------------------------------------------------------- environment */

static bool env_remove(struct policy *p, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < p->env.n; i++) {
		struct env_rule *e = &p->env.v[i];

		if (strlen(e->name) == n && !memcmp(e->name, name, n)) {
			free(e->name);
			free(e->value);
			memmove(e, e + 1, (p->env.n - i - 1) * sizeof(*e));
			p->env.n--;
			return true;
		}
	}
	return false;
}

int policy_add_env(struct policy *p, const char *spec, const char *origin, const char **err)
{
	const char *eq = strchr(spec, '=');
	size_t n = eq ? (size_t)(eq - spec) : strlen(spec);
	struct env_rule *e;

	if (!valid_env_name(spec, n)) {
		*err = "bad variable name (letters, digits and '_', not starting with a digit)";
		return -1;
	}
	if (eq && strlen(eq + 1) > ENV_VALUE_MAX) {
		*err = "value too long";
		return -1;
	}
	env_remove(p, spec, n);
	e = VEC_PUSH(p->env);
	e->name = xstrndup(spec, n);
	e->value = eq ? xstrdup(eq + 1) : NULL;
	set_origin(e->origin, origin);
	return 0;
}

/* ---------------------------------------------------------------- host patterns */

static bool valid_domain(const char *h)
{
	size_t total = strlen(h), lab = 0;
	const char *c;
	char prev = '.';

	if (total == 0 || total > HOST_MAX)
		return false;
	for (c = h; *c; c++) {
		if (*c == '.') {
			if (lab == 0 || prev == '-')
				return false;
			lab = 0;
		} else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
			   *c == '-') {
			if (lab == 0 && *c == '-')
				return false;
			if (++lab > 63)
				return false;
		} else {
			return false;
		}
		prev = *c;
	}
	return lab > 0 && prev != '-';
}

/* Parse "ADDR[/LEN]" as IPv4 or IPv6 into a canonical string; false when it is not one. */
static bool parse_ip_pattern(const char *s, char *out, size_t outlen, const char **err)
{
	char addr[INET6_ADDRSTRLEN + 8], canon[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int fam, bits, prefix = -1;

	if (alen == 0 || alen >= sizeof(addr))
		return false;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, bin) == 1) {
		fam = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, addr, bin) == 1) {
		fam = AF_INET6;
		bits = 128;
	} else {
		return false;
	}
	if (slash) {
		char *end;
		long v;

		errno = 0;
		v = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || v < 0 || v > bits || slash[1] == '+' ||
		    slash[1] == '-') {
			*err = "bad address prefix length";
			out[0] = '\0';
			return true;
		}
		prefix = (int)v;
		/* Clear the host bits so that the stored rule is canonical. */
		for (int i = 0; i < bits / 8; i++) {
			int keep = prefix - i * 8;

			if (keep <= 0)
				bin[i] = 0;
			else if (keep < 8)
				bin[i] &= (unsigned char)(0xff << (8 - keep));
		}
	}
	if (!inet_ntop(fam, bin, canon, sizeof(canon))) {
		*err = "bad address";
		out[0] = '\0';
		return true;
	}
	if (prefix >= 0)
		snprintf(out, outlen, "%s/%d", canon, prefix);
	else
		snprintf(out, outlen, "%s", canon);
	return true;
}

/*
 * PATTERN[:PORT] -> normalised pattern (lower case, no trailing dot, canonical IP) and
 * port (0: the scheme's default, -1: any). IPv6 with a port is written [ADDR]:PORT.
 */
static int parse_host_spec(const char *spec, bool allow_port, char **pattern, int *port,
			   const char **err)
{
	char buf[HOST_MAX + 16], out[HOST_MAX + 16];
	char *host = buf, *portstr = NULL, *c;
	size_t n = strlen(spec);
	bool bracket = false;

	*err = NULL;
	if (n == 0) {
		*err = "empty host pattern";
		return -1;
	}
	if (n >= sizeof(buf)) {
		*err = "host pattern too long";
		return -1;
	}
	memcpy(buf, spec, n + 1);
	if (buf[0] == '[') {
		c = strchr(buf, ']');
		if (!c) {
			*err = "missing ']' after an IPv6 address";
			return -1;
		}
		*c = '\0';
		host = buf + 1;
		bracket = true;
		if (c[1] == ':')
			portstr = c + 2;
		else if (c[1] != '\0') {
			*err = "unexpected text after ']'";
			return -1;
		}
	} else if ((c = strchr(buf, ':')) && !strchr(c + 1, ':')) {
		*c = '\0';
		portstr = c + 1;
	}
	*port = 0;
	if (portstr) {
		char *end;
		long v;

		if (!allow_port) {
			*err = "a port is not allowed here";
			return -1;
		}
		if (!strcmp(portstr, "*")) {
			*port = -1;
		} else {
			errno = 0;
			v = strtol(portstr, &end, 10);
			if (!*portstr || *end || errno || v < 1 || v > 65535 || portstr[0] == '+' ||
			    portstr[0] == '-') {
				*err = "bad port (1-65535 or *)";
				return -1;
			}
			*port = (int)v;
		}
	}
	for (c = host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	n = strlen(host);
	if (!strcmp(host, "*.")) {
		*err = "malformed host pattern";
		return -1;
	}
	if (n > 1 && host[n - 1] == '.')
		host[--n] = '\0';
	if (parse_ip_pattern(host, out, sizeof(out), err)) {
		if (*err)
			return -1;
		*pattern = xstrdup(out);
		return 0;
	}
	if (bracket || strchr(host, ':')) {
		*err = "bad IPv6 address";
		return -1;
	}
	if (strchr(host, '/')) {
		*err = "a /prefix needs an IP address";
		return -1;
	}
	if (!strcmp(host, "*")) {
		if (bracket) {
			*err = "bad IPv6 address";
			return -1;
		}
	} else if (!strncmp(host, "*.", 2)) {
		if (!valid_domain(host + 2) || strchr(host + 2, '*')) {
			*err = "malformed host pattern";
			return -1;
		}
	} else if (strchr(host, '*')) {
		*err = "'*' is allowed only as a whole first label, as in *.example.com";
		return -1;
	} else if (!valid_domain(host)) {
		*err = "malformed host name (letters, digits, '-', '_' and dots; IDNs as punycode)";
		return -1;
	}
	*pattern = xstrdup(host);
	return 0;
}

int policy_add_host(struct policy *p, const char *spec, bool deny, const char *origin,
		    const char **err)
{
	struct host_rule *h;
	char *pat;
	int port;
	size_t i;

	if (parse_host_spec(spec, true, &pat, &port, err) < 0)
		return -1;
	for (i = 0; i < p->hosts.n; i++) {
		h = &p->hosts.v[i];
		if (h->deny == deny && h->port == port && !strcmp(h->pattern, pat)) {
			free(pat); /* the same rule again: keep the first origin */
			return 0;
		}
	}
	h = VEC_PUSH(p->hosts);
	h->pattern = pat;
	h->port = port;
	h->deny = deny;
	set_origin(h->origin, origin);
	return 0;
}

int policy_add_host_map(struct policy *p, const char *spec, const char *origin, const char **err)
{
	const char *eq = strchr(spec, '=');
	char name[HOST_MAX + 2], addr[INET6_ADDRSTRLEN + 2], canon[HOST_MAX + 16];
	const char *a;
	size_t n, alen;
	struct host_map *m;
	size_t i;

	if (!eq || eq == spec) {
		*err = "expected NAME=ADDRESS";
		return -1;
	}
	n = (size_t)(eq - spec);
	if (n > HOST_MAX) {
		*err = "name too long";
		return -1;
	}
	for (i = 0; i < n; i++)
		name[i] =
		    (char)((spec[i] >= 'A' && spec[i] <= 'Z') ? spec[i] - 'A' + 'a' : spec[i]);
	name[n] = '\0';
	if (n > 1 && name[n - 1] == '.')
		name[--n] = '\0';
	if (!valid_domain(name)) {
		*err = "malformed host name";
		return -1;
	}
	a = eq + 1;
	alen = strlen(a);
	if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
		a++;
		alen -= 2;
	}
	if (alen == 0 || alen >= sizeof(addr) || memchr(a, '/', alen)) {
		*err = "bad address (an IPv4 or IPv6 literal)";
		return -1;
	}
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	*err = NULL;
	if (!parse_ip_pattern(addr, canon, sizeof(canon), err) || *err) {
		*err = "bad address (an IPv4 or IPv6 literal)";
		return -1;
	}
	for (i = 0; i < p->host_maps.n; i++) {
		if (!strcmp(p->host_maps.v[i].name, name)) {
			free(p->host_maps.v[i].addr);
			p->host_maps.v[i].addr = xstrdup(canon);
			set_origin(p->host_maps.v[i].origin, origin);
			return 0;
		}
	}
	m = VEC_PUSH(p->host_maps);
	m->name = xstrdup(name);
	m->addr = xstrdup(canon);
	set_origin(m->origin, origin);
	return 0;
}

/* ---------------------------------------------------------------- matching */

/* One matcher for the proxy and for policy users: net.c's (deny wins, see net.h). */
const struct host_rule *policy_match_host(const struct policy *p, const char *host, int port,
					  int default_port)
{
	bool denied;

	return net_match_host(p, host, port, default_port, &denied);
}

/* ---------------------------------------------------------------- secrets */

static struct secret_rule *secret_find(struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->secrets.n; i++)
		if (!strcmp(p->secrets.v[i].name, name))
			return &p->secrets.v[i];
	return NULL;
}

static void secret_free(struct secret_rule *s)
{
	free(s->name);
	free(s->source_arg);
	strvec_free(&s->hosts);
	free(s->header);
	strvec_free(&s->methods);
	strvec_free(&s->paths);
	free(s->placeholder);
}

static bool secret_remove(struct policy *p, const char *name)
{
	struct secret_rule *s = secret_find(p, name);
	size_t i;

	if (!s)
		return false;
	i = (size_t)(s - p->secrets.v);
	secret_free(s);
	memmove(s, s + 1, (p->secrets.n - i - 1) * sizeof(*s));
	p->secrets.n--;
	return true;
}

static struct secret_rule *secret_get(struct policy *p, const char *name, const char *origin)
{
	struct secret_rule *s = secret_find(p, name);

	if (s)
		return s;
	s = VEC_PUSH(p->secrets);
	s->name = xstrdup(name);
	s->source = SECRET_ENV;
	s->source_arg = xstrdup(name);
	set_origin(s->origin, origin);
	return s;
}

/* A secret bound to every name could be sent anywhere: refuse "*" (frees pat). */
static bool secret_host_any(char *pat, const char **err)
{
	if (strcmp(pat, "*"))
		return false;
	free(pat);
	*err = "a secret cannot be bound to every host ('*')";
	return true;
}

int policy_add_secret(struct policy *p, const char *spec, const char *origin, const char **err)
{
	const char *at = strchr(spec, '@');
	VEC(char *) hosts = { 0 };
	char name[256], *list, *items[LIST_ITEMS_MAX];
	struct secret_rule *s;
	int n, i;

	if (!at) {
		*err = "expected NAME@HOST[,HOST...]";
		return -1;
	}
	if (!valid_env_name(spec, (size_t)(at - spec))) {
		*err = "bad secret name (letters, digits and '_', not starting with a digit)";
		return -1;
	}
	memcpy(name, spec, (size_t)(at - spec));
	name[at - spec] = '\0';
	list = xstrdup(at + 1);
	n = split_list(list, items);
	if (n <= 0) {
		*err = n < 0 ? "too many hosts" : "no host after '@'";
		free(list);
		return -1;
	}
	for (i = 0; i < n; i++) {
		char *pat;
		int port;

		if (parse_host_spec(items[i], false, &pat, &port, err) < 0 ||
		    secret_host_any(pat, err)) {
			free(list);
			strvec_free(&hosts);
			return -1;
		}
		*VEC_PUSH(hosts) = pat;
	}
	free(list);
	s = secret_get(p, name, origin);
	/* The flag's hosts replace a profile's; its source and injection rules stay. */
	strvec_free(&s->hosts);
	s->hosts.v = hosts.v;
	s->hosts.n = hosts.n;
	s->hosts.cap = hosts.cap;
	s->optional = false;
	set_origin(s->origin, origin);
	return 0;
}

/* Drop optional secrets whose source is not there (env var unset or empty, file absent). */
static void secrets_drop_absent(struct policy *p)
{
	size_t i = 0;

	while (i < p->secrets.n) {
		struct secret_rule *s = &p->secrets.v[i];
		bool absent = false;

		if (s->optional && s->source == SECRET_ENV) {
			const char *v = getenv(s->source_arg);

			absent = !v || !*v;
		} else if (s->optional && s->source == SECRET_FILE) {
			absent = access(s->source_arg, R_OK) != 0;
		}
		if (absent) {
			char *name = xstrdup(s->name);

			secret_remove(p, name);
			free(name);
		} else {
			i++;
		}
	}
}

/* ---------------------------------------------------------------- init and free */

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->net = NET_NONE;
	set_origin(p->net_origin, "built-in");
}

void policy_free(struct policy *p)
{
	size_t i;

	for (i = 0; i < p->mounts.n; i++)
		free(p->mounts.v[i].path);
	free(p->mounts.v);
	for (i = 0; i < p->env.n; i++) {
		free(p->env.v[i].name);
		free(p->env.v[i].value);
	}
	free(p->env.v);
	for (i = 0; i < p->hosts.n; i++)
		free(p->hosts.v[i].pattern);
	free(p->hosts.v);
	for (i = 0; i < p->host_maps.n; i++) {
		free(p->host_maps.v[i].name);
		free(p->host_maps.v[i].addr);
	}
	free(p->host_maps.v);
	for (i = 0; i < p->secrets.n; i++)
		secret_free(&p->secrets.v[i]);
	free(p->secrets.v);
	strvec_free(&p->layers);
	memset(&p->mounts, 0, sizeof(p->mounts));
	memset(&p->env, 0, sizeof(p->env));
	memset(&p->hosts, 0, sizeof(p->hosts));
	memset(&p->host_maps, 0, sizeof(p->host_maps));
	memset(&p->secrets, 0, sizeof(p->secrets));
}

/* ---------------------------------------------------------------- profile files */

enum section {
	SEC_NONE,
	SEC_PROFILE,
	SEC_FILESYSTEM,
	SEC_NETWORK,
	SEC_ENV,
	SEC_SECRET,
	SEC_CONFIG, /* [config] in config.ini */
};

struct entry {
	int line;
	enum section sec;
	char *secname; /* [secret NAME] */
	char *key;     /* NULL: the [secret NAME] header line itself */
	char *value;
};

/* One file being parsed: inih reads it line by line through pf_read. */
struct pfile {
	const char *name; /* display name, for origins and errors */
	const char *text;
	size_t len, pos;
	int line;    /* the line inih is working on */
	bool config; /* config.ini, not a profile */
	enum section sec;
	char secname[NAME_MAX_LEN + 1];
	VEC(struct entry) entries;
	char *err;
	size_t errlen;
	bool failed;
};

static const char *const keys_none[] = { NULL };
static const char *const keys_profile[] = { "description", "inherit", "network", NULL };
static const char *const keys_filesystem[] = { "ro", "rw", "hide", "overlay", NULL };
static const char *const keys_network[] = { "allow", "deny", NULL };
static const char *const keys_env[] = { "pass", "set", "unset", NULL };
static const char *const keys_secret[] = { "source", "hosts",  "header", "query",
					   "methods", "paths", "optional", "drop", NULL };
static const char *const keys_config[] = { "trust", NULL };

static const char *const *section_keys(const struct pfile *f)
{
	switch (f->sec) {
	case SEC_PROFILE:
		return keys_profile;
	case SEC_FILESYSTEM:
		return keys_filesystem;
	case SEC_NETWORK:
		return keys_network;
	case SEC_ENV:
		return keys_env;
	case SEC_SECRET:
		return keys_secret;
	case SEC_CONFIG:
		return keys_config;
	case SEC_NONE:
		return f->config ? keys_config : keys_none;
	}
	return keys_none;
}

static const char *section_label(enum section s)
{
	static const char *const names[] = { "",    "profile", "filesystem", "network",
					     "env", "secret",  "config" };

	return names[s];
}

static void pf_error(struct pfile *f, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pf_error(struct pfile *f, int line, const char *fmt, ...)
{
	char m[768];
	va_list ap;

	if (f->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(f->err, f->errlen, "%s:%d: %s", f->name, line, m);
	else
		snprintf(f->err, f->errlen, "%s: %s", f->name, m);
	f->failed = true;
}

static void pf_section(struct pfile *f, const char *s, size_t n)
{
	const char *close = memchr(s, ']', n), *r;
	char inner[96];
	size_t len;
	char *c, *name;

	if (!close) {
		pf_error(f, f->line, "missing ']' in a section header");
		return;
	}
	for (r = close + 1; r < s + n && (*r == ' ' || *r == '\t'); r++)
		;
	if (r < s + n && *r != ';' && *r != '#') {
		pf_error(f, f->line, "unexpected text after a section header");
		return;
	}
	len = (size_t)(close - s - 1);
	if (len >= sizeof(inner)) {
		pf_error(f, f->line, "section name too long");
		return;
	}
	memcpy(inner, s + 1, len);
	inner[len] = '\0';
	for (name = inner; *name == ' ' || *name == '\t'; name++)
		;
	for (c = name + strlen(name); c > name && (c[-1] == ' ' || c[-1] == '\t'); c--)
		c[-1] = '\0';
	f->sec = SEC_NONE;
	if (f->config) {
		if (!strcmp(name, "config")) {
			f->sec = SEC_CONFIG;
			return;
		}
		pf_error(f, f->line, "unknown section [%s] (config.ini has [config] only)", name);
		return;
	}
	if (!strcmp(name, "profile"))
		f->sec = SEC_PROFILE;
	else if (!strcmp(name, "filesystem"))
		f->sec = SEC_FILESYSTEM;
	else if (!strcmp(name, "network"))
		f->sec = SEC_NETWORK;
	else if (!strcmp(name, "env"))
		f->sec = SEC_ENV;
	if (f->sec != SEC_NONE)
		return;
	if (!strncmp(name, "secret", 6) && (name[6] == ' ' || name[6] == '\t')) {
		struct entry *e;

		for (c = name + 6; *c == ' ' || *c == '\t'; c++)
			;
		if (strlen(c) > NAME_MAX_LEN || !valid_env_name(c, strlen(c))) {
			pf_error(f, f->line,
				 "bad secret name '%s' (letters, digits and '_', not starting "
				 "with a digit)",
				 c);
			return;
		}
		f->sec = SEC_SECRET;
		snprintf(f->secname, sizeof(f->secname), "%s", c);
		e = VEC_PUSH(f->entries);
		e->line = f->line;
		e->sec = SEC_SECRET;
		e->secname = xstrdup(c);
		return;
	}
	if (!strcmp(name, "secret"))
		pf_error(f, f->line, "[secret] needs a name: [secret NAME]");
	else
		pf_error(f, f->line,
			 "unknown section [%s] (expected [profile], [filesystem], [network], "
			 "[env] or [secret NAME])",
			 name);
}

/*
 * inih's reader: hands inih one line at a time from memory and counts lines, so that
 * every key can be tagged with its line. Section headers are handled here (inih does
 * not report an empty section); lines inih must not see are replaced by an empty line.
 */
static char *pf_read(char *str, int num, void *stream)
{
	struct pfile *f = stream;
	const char *s, *nl, *c;
	size_t n, len;

	if (f->pos >= f->len || num < 4)
		return NULL;
	s = f->text + f->pos;
	nl = memchr(s, '\n', f->len - f->pos);
	n = nl ? (size_t)(nl - s) + 1 : f->len - f->pos;
	f->pos += n;
	f->line++;
	if (f->line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
		s += 3;
		n -= 3;
	}
	len = n;
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	str[0] = '\n';
	str[1] = '\0';
	if (f->failed)
		return str;
	if (memchr(s, '\0', len)) {
		pf_error(f, f->line, "NUL byte in a profile");
		return str;
	}
	if (len + 3 > (size_t)num) {
		pf_error(f, f->line, "line too long (at most %d characters)", num - 3);
		return str;
	}
	if (len && (s[0] == ' ' || s[0] == '\t')) {
		for (c = s; c < s + len && (*c == ' ' || *c == '\t'); c++)
			;
		if (c < s + len && *c != ';' && *c != '#')
			pf_error(f, f->line,
				 "indented line: continuation lines are not supported, repeat "
				 "the key on a line of its own");
		return str;
	}
	if (len && s[0] == '[') {
		pf_section(f, s, len);
		return str;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int pf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct pfile *f = user;
	const char *const *k;
	struct entry *e;

	(void)section;
	if (f->failed)
		return 1;
	if (f->sec == SEC_NONE && !f->config) {
		pf_error(f, f->line,
			 "'%s' outside any section (start with a section such as [profile])", name);
		return 0;
	}
	for (k = section_keys(f); *k; k++)
		if (!strcmp(*k, name))
			break;
	if (!*k) {
		if (f->sec == SEC_NONE)
			pf_error(f, f->line, "unknown key '%s'", name);
		else
			pf_error(f, f->line, "unknown key '%s' in [%s]", name,
				 section_label(f->sec));
		return 0;
	}
	if (!value || !*value) {
		pf_error(f, f->line, "'%s' has no value", name);
		return 0;
	}
	e = VEC_PUSH(f->entries);
	e->line = f->line;
	e->sec = f->sec;
	e->secname = f->sec == SEC_SECRET ? xstrdup(f->secname) : NULL;
	e->key = xstrdup(name);
	e->value = xstrdup(value);
	return 1;
}

static void pf_free(struct pfile *f)
{
	size_t i;

	for (i = 0; i < f->entries.n; i++) {
		free(f->entries.v[i].secname);
		free(f->entries.v[i].key);
		free(f->entries.v[i].value);
	}
	free(f->entries.v);
	f->entries.v = NULL;
	f->entries.n = f->entries.cap = 0;
}

/* Parse the whole file into f->entries: syntax, sections and key names. 0 or -1. */
static int pf_parse(struct pfile *f)
{
	int r = ini_parse_stream(pf_read, f, pf_handler, f);

	if (f->failed)
		return -1;
	if (r == -2) {
		pf_error(f, 0, "out of memory");
		return -1;
	}
	if (r != 0) {
		pf_error(f, r, "syntax error: expected KEY = VALUE, a [section] or a comment");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- layering */

enum level {
	LVL_USER,    /* $XDG_CONFIG_HOME/agentjail/NAME.ini */
	LVL_ETC,     /* /etc/agentjail/NAME.ini */
	LVL_BUILTIN, /* compiled in */
	LVL_PATH,    /* a file named by path */
	LVL_TEXT,    /* policy_load_text */
	LVL_WORKSPACE,
};

struct source {
	enum level level;
	char *name;    /* profile name; NULL for a path */
	char *display; /* "node.ini" for a built-in, else the path; also the file's identity */
	char *text;    /* owned copy (files) */
	const char *ctext;
	size_t len;
	bool untrusted;
	char *note; /* for the layer line */
};

struct loader {
	struct policy *p;
	char *err;
	size_t errlen;
	VEC(char *) stack; /* files whose inherits are being applied */
	VEC(char *) done;  /* files applied */
};

static void source_free(struct source *s)
{
	free(s->name);
	free(s->display);
	free(s->text);
	free(s->note);
	memset(s, 0, sizeof(*s));
}

static bool strvec_has(const void *vec, const char *s)
{
	const VEC(char *) *v = vec;
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in one profile directory (NAME.ini, config.ini excepted) appended to names. */
static void dir_profile_names(const char *dir, void *vec)
{
	VEC(char *) *names = vec;
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char *name;

		if (n <= 4 || strcmp(de->d_name + n - 4, ".ini") ||
		    !strcmp(de->d_name, "config.ini"))
			continue;
		name = xstrndup(de->d_name, n - 4);
		if (!valid_profile_name(name) || names->n >= 4096) {
			free(name);
			continue;
		}
		*VEC_PUSH(*names) = name;
	}
	closedir(d);
}

/* "agent, default, git, ..." : every profile name visible (malloc'd). */
static char *available_names(void)
{
	VEC(char *) names = { 0 };
	const struct builtin_profile *b;
	char *dir = user_dir(), *out;
	size_t i, len = 1;

	for (b = builtin_profiles; b->name; b++)
		*VEC_PUSH(names) = xstrdup(b->name);
	if (dir)
		dir_profile_names(dir, &names);
	free(dir);
	dir_profile_names(etc_dir(), &names);
	qsort(names.v, names.n, sizeof(char *), cmp_str);
	for (i = 0; i < names.n; i++)
		len += strlen(names.v[i]) + 2;
	out = xmalloc(len);
	out[0] = '\0';
	for (i = 0; i < names.n; i++) {
		if (i && !strcmp(names.v[i], names.v[i - 1]))
			continue;
		if (out[0])
			strcat(out, ", ");
		strcat(out, names.v[i]);
	}
	strvec_free(&names);
	return out;
}

/*
 * Find profile NAME at level min_level or below (user, then /etc, then built-in).
 * 0 found, -1 not found, -2 error (message in L->err).
 */
static int find_named(struct loader *L, const char *name, int min_level, struct source *s)
{
	const struct builtin_profile *b;
	int lvl;

	memset(s, 0, sizeof(*s));
	for (lvl = min_level; lvl <= LVL_BUILTIN; lvl++) {
		char *dir, *path, *text;
		size_t len;

		if (lvl == LVL_BUILTIN) {
			for (b = builtin_profiles; b->name; b++) {
				if (strcmp(b->name, name))
					continue;
				s->level = LVL_BUILTIN;
				s->name = xstrdup(name);
				s->display = xasprintf("%s.ini", name);
				s->ctext = b->text;
				s->len = b->len;
				s->note = xstrdup("built-in");
				return 0;
			}
			return -1;
		}
		dir = lvl == LVL_USER ? user_dir() : xstrdup(etc_dir());
		if (!dir)
			continue;
		path = xasprintf("%s/%s.ini", dir, name);
		free(dir);
		if (read_small_file(path, false, &text, &len) == 0) {
			s->level = (enum level)lvl;
			s->name = xstrdup(name);
			s->display = path;
			s->text = text;
			s->ctext = text;
			s->len = len;
			s->note = xstrdup(lvl == LVL_USER ? "user" : "system");
			return 0;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			snprintf(L->err, L->errlen, "%s: cannot read profile: %s", path,
				 strerror(errno));
			free(path);
			return -2;
		}
		free(path);
	}
	return -1;
}

static int load_path(struct loader *L, const char *path, struct source *s, bool nofollow)
{
	char *text;
	size_t len;

	memset(s, 0, sizeof(*s));
	if (read_small_file(path, nofollow, &text, &len) < 0)
		return -1;
	s->level = LVL_PATH;
	s->display = xstrdup(path);
	s->text = text;
	s->ctext = text;
	s->len = len;
	s->note = xstrdup("file");
	(void)L;
	return 0;
}

/* State of the [secret NAME] section being applied. */
struct secret_ctx {
	char *name;
	int line;
	bool any, dropped, hosts_set, methods_set, paths_set;
};

static int apply_source(struct loader *L, struct source *s);

static int widen(struct pfile *f, const struct entry *e, const char *why)
{
	pf_error(f, e->line, "'%s = %s' would widen the jail: %s; %s", e->key, e->value, why,
		 widen_hint);
	return -1;
}

static int apply_inherit(struct loader *L, struct pfile *f, struct source *s,
			 const struct entry *e)
{
	char *list = xstrdup(e->value), *items[LIST_ITEMS_MAX];
	int n = split_list(list, items), i, ret = 0;

	if (n < 0) {
		pf_error(f, e->line, "inherit: too many names");
		free(list);
		return -1;
	}
	for (i = 0; i < n && ret == 0; i++) {
		const char *name = items[i];
		struct source child;
		const char *err;
		char *path;
		size_t k;

		if (strchr(name, '/') || name[0] == '~' || name[0] == '$') {
			if (expand_path(L->p, name, &path, &err) < 0) {
				pf_error(f, e->line, "inherit %s: %s", name, err);
				ret = -1;
				break;
			}
			if (load_path(L, path, &child, false) < 0) {
				pf_error(f, e->line, "inherit %s: %s", path, strerror(errno));
				free(path);
				ret = -1;
				break;
			}
			free(path);
		} else {
			int min = LVL_USER, r;
			char *avail;

			if (!valid_profile_name(name)) {
				pf_error(f, e->line, "inherit: bad profile name '%s'", name);
				ret = -1;
				break;
			}
			/* A user's node.ini may build on the node.ini below it. */
			if (s->name && !strcmp(s->name, name) && s->level <= LVL_ETC)
				min = s->level + 1;
			r = find_named(L, name, min, &child);
			if (r == -2) {
				f->failed = true;
				ret = -1;
				break;
			}
			if (r < 0) {
				avail = available_names();
				pf_error(f, e->line,
					 "inherit: no profile named '%s' (available: %s)", name,
					 avail);
				free(avail);
				ret = -1;
				break;
			}
		}
		if (strvec_has(&L->stack, child.display)) {
			char chain[1024] = "";

			for (k = 0; k < L->stack.n; k++) {
				strncat(chain, L->stack.v[k], sizeof(chain) - strlen(chain) - 1);
				strncat(chain, " -> ", sizeof(chain) - strlen(chain) - 1);
			}
			strncat(chain, child.display, sizeof(chain) - strlen(chain) - 1);
			pf_error(f, e->line, "inherit cycle: %s", chain);
			source_free(&child);
			ret = -1;
			break;
		}
		if (L->stack.n >= INHERIT_DEPTH_MAX) {
			pf_error(f, e->line, "inherit: more than %d levels", INHERIT_DEPTH_MAX);
			source_free(&child);
			ret = -1;
			break;
		}
		child.untrusted = false;
		ret = apply_source(L, &child);
		if (ret < 0)
			f->failed = true; /* the message is already in L->err */
		source_free(&child);
	}
	free(list);
	return ret;
}

static int apply_filesystem(struct pfile *f, struct policy *p, bool untrusted,
			    const struct entry *e, const char *origin)
{
	enum mount_mode mode;
	const char *v = e->value, *err, *why;
	bool optional = false;
	char *path;

	if (!strcmp(e->key, "ro"))
		mode = MOUNT_RO;
	else if (!strcmp(e->key, "rw"))
		mode = MOUNT_RW;
	else if (!strcmp(e->key, "hide"))
		mode = MOUNT_HIDE;
	else
		mode = MOUNT_OVERLAY;
	if (v[0] == '?') {
		optional = true;
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
	}
	if (expand_path(p, v, &path, &err) < 0) {
		pf_error(f, e->line, "%s = %s: %s", e->key, e->value, err);
		return -1;
	}
	if (untrusted && (why = untrusted_mount_check(p, path, mode))) {
		free(path);
		return widen(f, e, why);
	}
	mount_insert(p, path, mode, optional, origin);
	return 0;
}

static int apply_list(struct pfile *f, struct policy *p, bool untrusted, const struct entry *e,
		      const char *origin)
{
	char *list = xstrdup(e->value), *items[LIST_ITEMS_MAX];
	int n = split_list(list, items), i, ret = 0;
	const char *err = NULL;

	if (n <= 0) {
		pf_error(f, e->line, "%s: %s", e->key, n < 0 ? "too many items" : "empty list");
		free(list);
		return -1;
	}
	for (i = 0; i < n && ret == 0; i++) {
		if (e->sec == SEC_NETWORK) {
			bool deny = !strcmp(e->key, "deny");

			if (!deny && untrusted) {
				ret = widen(f, e, "it allows a host");
				break;
			}
			if (policy_add_host(p, items[i], deny, origin, &err) < 0) {
				pf_error(f, e->line, "%s %s: %s", e->key, items[i], err);
				ret = -1;
			}
		} else if (!strcmp(e->key, "pass")) {
			if (untrusted) {
				ret = widen(f, e, "it passes a host variable into the jail");
				break;
			}
			if (strchr(items[i], '=') ||
			    policy_add_env(p, items[i], origin, &err) < 0) {
				pf_error(f, e->line, "pass %s: %s", items[i],
					 err ? err
					     : "give the name only (set = NAME=VALUE sets one)");
				ret = -1;
			}
		} else { /* unset */
			if (!valid_env_name(items[i], strlen(items[i]))) {
				pf_error(f, e->line, "unset %s: bad variable name", items[i]);
				ret = -1;
				break;
			}
			env_remove(p, items[i], strlen(items[i]));
		}
	}
	free(list);
	return ret;
}

static int secret_finish(struct pfile *f, struct policy *p, struct secret_ctx *c)
{
	struct secret_rule *s;
	int ret = 0;

	if (!c->name)
		return 0;
	s = secret_find(p, c->name);
	if (!c->any && !c->dropped) {
		pf_error(f, c->line, "empty [secret %s] section", c->name);
		ret = -1;
	} else if (!c->dropped && s && s->hosts.n == 0) {
		pf_error(f, c->line, "secret %s is bound to no host (add hosts = HOST, ...)",
			 c->name);
		ret = -1;
	} else if (!c->dropped && s && s->optional && s->source == SECRET_CMD) {
		pf_error(f, c->line, "secret %s: optional needs an env: or file: source", c->name);
		ret = -1;
	}
	free(c->name);
	memset(c, 0, sizeof(*c));
	return ret;
}

static bool valid_header_template(const char *v)
{
	const char *colon = strchr(v, ':'), *c;

	if (!colon || colon == v || !strstr(colon, "{value}"))
		return false;
	for (c = v; c < colon; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || strchr("!#$%&'*+-.^_`|~", *c)))
			return false;
	for (c = colon; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

/* methods and paths: list items replacing what an earlier profile set (first line here). */
static int secret_list(struct pfile *f, const struct entry *e, void *vec, bool *set)
{
	VEC(char *) *v = vec;
	char *list = xstrdup(e->value), *items[LIST_ITEMS_MAX];
	int n = split_list(list, items), i;
	bool methods = !strcmp(e->key, "methods");

	if (n <= 0) {
		pf_error(f, e->line, "%s: %s", e->key, n < 0 ? "too many items" : "empty list");
		free(list);
		return -1;
	}
	if (!*set) {
		strvec_free(v);
		*set = true;
	}
	for (i = 0; i < n; i++) {
		char *it = items[i], *c;

		if (methods) {
			for (c = it; *c; c++) {
				if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
				if (*c < 'A' || *c > 'Z')
					break;
			}
			if (*c || strlen(it) > 16) {
				pf_error(f, e->line, "methods: bad method '%s'", it);
				free(list);
				return -1;
			}
		} else {
			if (it[0] != '/' || strlen(it) > 1024) {
				pf_error(f, e->line, "paths: '%s' must start with '/'", it);
				free(list);
				return -1;
			}
			for (c = it; *c; c++)
				if ((unsigned char)*c <= 0x20 || *c == 0x7f)
					break;
			if (*c) {
				pf_error(f, e->line, "paths: control character in '%s'", it);
				free(list);
				return -1;
			}
		}
		if (!strvec_has(v, it))
			*VEC_PUSH(*v) = xstrdup(it);
	}
	free(list);
	return 0;
}

static int apply_secret(struct pfile *f, struct policy *p, bool untrusted, const struct entry *e,
			struct secret_ctx *c, const char *origin)
{
	char hdr[PATH_MAX + 32];
	struct secret_rule *s;
	const char *err;
	bool b;

	(void)origin;
	if (!e->key) { /* [secret NAME] */
		if (secret_finish(f, p, c) < 0)
			return -1;
		c->name = xstrdup(e->secname);
		c->line = e->line;
		return 0;
	}
	if (c->dropped) {
		pf_error(f, e->line, "drop = yes must be the only key of [secret %s]", c->name);
		return -1;
	}
	if (!strcmp(e->key, "drop")) {
		if (!parse_bool(e->value, &b)) {
			pf_error(f, e->line, "drop must be yes or no");
			return -1;
		}
		if (b && c->any) {
			pf_error(f, e->line, "drop = yes must be the only key of [secret %s]",
				 c->name);
			return -1;
		}
		if (b) {
			secret_remove(p, c->name);
			c->dropped = true;
		}
		c->any = true;
		return 0;
	}
	if (untrusted)
		return widen(f, e, "it adds or changes a secret (a workspace may only drop one)");
	/* A secret's origin is the [secret NAME] line of the last profile that shaped it. */
	snprintf(hdr, sizeof(hdr), "%s:%d", f->name, c->line);
	s = secret_get(p, c->name, hdr);
	set_origin(s->origin, hdr);
	c->any = true;
	if (!strcmp(e->key, "source")) {
		const char *v = e->value;
		enum secret_source src;
		char *arg;

		if (!strncmp(v, "env:", 4) && valid_env_name(v + 4, strlen(v + 4))) {
			src = SECRET_ENV;
			arg = xstrdup(v + 4);
		} else if (!strncmp(v, "file:", 5)) {
			if (expand_path(p, v + 5, &arg, &err) < 0) {
				pf_error(f, e->line, "source %s: %s", v, err);
				return -1;
			}
			src = SECRET_FILE;
		} else if (!strncmp(v, "cmd:", 4) && v[4]) {
			src = SECRET_CMD;
			arg = xstrdup(v + 4);
		} else {
			pf_error(f, e->line,
				 "source must be env:VARIABLE, file:PATH or cmd:COMMAND");
			return -1;
		}
		s = secret_find(p, c->name);
		free(s->source_arg);
		s->source = src;
		s->source_arg = arg;
	} else if (!strcmp(e->key, "hosts")) {
		char *list = xstrdup(e->value), *items[LIST_ITEMS_MAX];
		int n = split_list(list, items), i;

		if (n <= 0) {
			pf_error(f, e->line, "hosts: %s", n < 0 ? "too many items" : "empty list");
			free(list);
			return -1;
		}
		if (!c->hosts_set) {
			strvec_free(&s->hosts);
			c->hosts_set = true;
		}
		for (i = 0; i < n; i++) {
			char *pat;
			int port;

			if (parse_host_spec(items[i], false, &pat, &port, &err) < 0 ||
			    secret_host_any(pat, &err)) {
				pf_error(f, e->line, "hosts %s: %s", items[i], err);
				free(list);
				return -1;
			}
			if (strvec_has(&s->hosts, pat))
				free(pat);
			else
				*VEC_PUSH(s->hosts) = pat;
		}
		free(list);
	} else if (!strcmp(e->key, "header")) {
		if (!valid_header_template(e->value)) {
			pf_error(f, e->line, "header must look like 'Name: text {value}'");
			return -1;
		}
		free(s->header);
		s->header = xstrdup(e->value);
	} else if (!strcmp(e->key, "query") || !strcmp(e->key, "optional")) {
		if (!parse_bool(e->value, &b)) {
			pf_error(f, e->line, "%s must be yes or no", e->key);
			return -1;
		}
		if (!strcmp(e->key, "query"))
			s->in_query = b;
		else
			s->optional = b;
	} else if (!strcmp(e->key, "methods")) {
		return secret_list(f, e, &s->methods, &c->methods_set);
	} else {
		return secret_list(f, e, &s->paths, &c->paths_set);
	}
	return 0;
}

static int apply_entry(struct pfile *f, struct policy *p, bool untrusted, const struct entry *e,
		       struct secret_ctx *c)
{
	char origin[PATH_MAX + 32];
	const char *err = NULL;

	snprintf(origin, sizeof(origin), "%s:%d", f->name, e->line);
	switch (e->sec) {
	case SEC_PROFILE:
		if (!strcmp(e->key, "network")) {
			if (!strcmp(e->value, "none")) {
				p->net = NET_NONE;
			} else if (!strcmp(e->value, "proxy")) {
				if (untrusted && p->net != NET_PROXY)
					return widen(f, e, "it turns the network on");
				p->net = NET_PROXY;
			} else {
				pf_error(f, e->line, "network must be none or proxy");
				return -1;
			}
			set_origin(p->net_origin, origin);
		}
		return 0; /* description: for listings; inherit: applied first */
	case SEC_FILESYSTEM:
		return apply_filesystem(f, p, untrusted, e, origin);
	case SEC_NETWORK:
		return apply_list(f, p, untrusted, e, origin);
	case SEC_ENV:
		if (strcmp(e->key, "set"))
			return apply_list(f, p, untrusted, e, origin);
		if (!strchr(e->value, '=')) {
			pf_error(f, e->line, "set needs NAME=VALUE");
			return -1;
		}
		if (policy_add_env(p, e->value, origin, &err) < 0) {
			pf_error(f, e->line, "set %s: %s", e->value, err);
			return -1;
		}
		return 0;
	case SEC_SECRET:
		return apply_secret(f, p, untrusted, e, c, origin);
	case SEC_NONE:
	case SEC_CONFIG:
		break;
	}
	return 0;
}

/*
 * Parse a file completely, apply what it inherits (in order), then its own lines in
 * order. A file already applied (diamond inheritance, default inherited again) is
 * skipped.
 */
static int apply_source(struct loader *L, struct source *s)
{
	struct pfile f = { 0 };
	struct secret_ctx c = { 0 };
	size_t i;
	int ret = 0;

	if (strvec_has(&L->done, s->display))
		return 0;
	f.name = s->display;
	f.text = s->ctext;
	f.len = s->len;
	f.err = L->err;
	f.errlen = L->errlen;
	if (pf_parse(&f) < 0) {
		pf_free(&f);
		return -1;
	}
	*VEC_PUSH(L->stack) = xstrdup(s->display);
	for (i = 0; i < f.entries.n && ret == 0; i++) {
		const struct entry *e = &f.entries.v[i];

		if (e->sec != SEC_PROFILE || strcmp(e->key, "inherit"))
			continue;
		if (s->untrusted)
			ret = widen(&f, e, "it pulls in another profile");
		else
			ret = apply_inherit(L, &f, s, e);
	}
	free(L->stack.v[--L->stack.n]);
	for (i = 0; i < f.entries.n && ret == 0; i++)
		ret = apply_entry(&f, L->p, s->untrusted, &f.entries.v[i], &c);
	if (ret == 0)
		ret = secret_finish(&f, L->p, &c);
	free(c.name);
	if (ret == 0) {
		*VEC_PUSH(L->done) = xstrdup(s->display);
		*VEC_PUSH(L->p->layers) = s->level == LVL_BUILTIN
						  ? xasprintf("built-in %s", s->display)
						  : xasprintf("%s (%s)", s->display, s->note);
	}
	pf_free(&f);
	return ret;
}

static void loader_free(struct loader *L)
{
	strvec_free(&L->stack);
	strvec_free(&L->done);
}

/*
 * Is the workspace trusted by a "trust = DIR" line of the user's config.ini? 1 yes (note
 * set to "FILE:LINE"), 0 no, -1 on a bad config file (message in L->err).
 */
static int config_trusts(struct loader *L, const char *ws, char **note)
{
	char *dir = user_dir(), *path, *text, wsreal[PATH_MAX], real[PATH_MAX];
	struct pfile f = { 0 };
	size_t len, i;
	int ret = 0;

	if (!dir)
		return 0;
	path = xasprintf("%s/config.ini", dir);
	free(dir);
	if (read_small_file(path, false, &text, &len) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			free(path);
			return 0;
		}
		snprintf(L->err, L->errlen, "%s: cannot read: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (!realpath(ws, wsreal))
		snprintf(wsreal, sizeof(wsreal), "%s", ws);
	f.name = path;
	f.text = text;
	f.len = len;
	f.config = true;
	f.err = L->err;
	f.errlen = L->errlen;
	if (pf_parse(&f) < 0)
		ret = -1;
	for (i = 0; i < f.entries.n && ret == 0; i++) {
		const struct entry *e = &f.entries.v[i];
		const char *err;
		char *dirp;

		if (var_prefix(e->value, "WORKSPACE")) {
			pf_error(&f, e->line, "trust: $WORKSPACE is not allowed here");
			ret = -1;
			break;
		}
		if (expand_path(L->p, e->value, &dirp, &err) < 0) {
			pf_error(&f, e->line, "trust = %s: %s", e->value, err);
			ret = -1;
			break;
		}
		if (!realpath(dirp, real))
			snprintf(real, sizeof(real), "%s", dirp);
		free(dirp);
		if (!strcmp(real, wsreal)) {
			*note = xasprintf("%s:%d", path, e->line);
			ret = 1;
		}
	}
	pf_free(&f);
	free(text);
	free(path);
	return ret;
}

static int load_workspace(struct loader *L)
{
	char wsbuf[PATH_MAX], *note = NULL;
	const char *ws = workspace_of(L->p, wsbuf, sizeof(wsbuf));
	struct source s;
	char *path;
	int t, ret;

	if (!ws)
		return 0;
	path = xasprintf("%s/%s", ws, WORKSPACE_FILE);
	/* O_NOFOLLOW: the workspace is attacker-controlled; a link could point anywhere. */
	if (load_path(L, path, &s, true) < 0) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		if (errno == ELOOP)
			snprintf(L->err, L->errlen,
				 "%s: is a symbolic link; the workspace profile must be a regular "
				 "file",
				 path);
		else
			snprintf(L->err, L->errlen, "%s: cannot read: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	s.level = LVL_WORKSPACE;
	t = L->p->trust_workspace ? 1 : config_trusts(L, ws, &note);
	if (t < 0) {
		source_free(&s);
		return -1;
	}
	free(s.note);
	if (t == 0)
		s.note = xstrdup("workspace, untrusted: tighten-only");
	else if (note)
		s.note = xasprintf("workspace, trusted by %s", note);
	else
		s.note = xstrdup("workspace, trusted by --trust-workspace");
	free(note);
	s.untrusted = t == 0;
	ret = apply_source(L, &s);
	source_free(&s);
	return ret;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

int policy_load(struct policy *p, const char *profile, char *err, size_t errlen)
{
	struct loader L = { .p = p, .err = err, .errlen = errlen };
	struct source s;
	int r, ret = -1;

	err[0] = '\0';
	r = find_named(&L, "default", LVL_USER, &s);
	if (r == -2)
		goto out;
	if (r == 0) {
		r = apply_source(&L, &s);
		source_free(&s);
		if (r < 0)
			goto out;
	}
	if (profile && *profile) {
		if (strchr(profile, '/') || ends_with(profile, ".ini")) {
			if (load_path(&L, profile, &s, false) < 0) {
				snprintf(err, errlen, "%s: cannot read profile: %s", profile,
					 strerror(errno));
				goto out;
			}
		} else {
			r = valid_profile_name(profile) ? find_named(&L, profile, LVL_USER, &s)
							: -1;
			if (r == -2)
				goto out;
			if (r < 0) {
				char *avail = available_names();

				snprintf(err, errlen, "unknown profile '%s'; available: %s",
					 profile, avail);
				free(avail);
				goto out;
			}
		}
		r = apply_source(&L, &s);
		source_free(&s);
		if (r < 0)
			goto out;
	}
	if (load_workspace(&L) < 0)
		goto out;
	secrets_drop_absent(p);
	ret = 0;
out:
	loader_free(&L);
	return ret;
}

void policy_load_profiles(struct policy *p, const char *profile)
{
	char err[2048];

	if (policy_load(p, profile, err, sizeof(err)) < 0)
		die("%s", err);
}

int policy_load_text(struct policy *p, const char *name, const char *text, size_t len,
		     bool untrusted, char *err, size_t errlen)
{
	struct loader L = { .p = p, .err = err, .errlen = errlen };
	struct source s = { 0 };
	int ret;

	err[0] = '\0';
	s.level = LVL_TEXT;
	s.display = xstrdup(name);
	s.ctext = text;
	s.len = len;
	s.untrusted = untrusted;
	s.note = xstrdup(untrusted ? "untrusted: tighten-only" : "text");
	ret = apply_source(&L, &s);
	source_free(&s);
	loader_free(&L);
	return ret;
}

/* ---------------------------------------------------------------- explain */

static void host_str(char *buf, size_t len, const char *pattern, int port)
{
	bool v6 = strchr(pattern, ':') != NULL;

	if (port == 0)
		snprintf(buf, len, "%s", pattern);
	else if (port < 0)
		snprintf(buf, len, v6 ? "[%s]:*" : "%s:*", pattern);
	else
		snprintf(buf, len, v6 ? "[%s]:%d" : "%s:%d", pattern, port);
}

static void line(FILE *out, const char *kind, const char *mode, const char *item,
		 const char *origin)
{
	if (origin[0])
		fprintf(out, "%-9s %-8s %-44s %s\n", kind, mode, item, origin);
	else
		fprintf(out, "%-9s %-8s %s\n", kind, mode, item);
}

static void strvec_join(FILE *out, const char *label, const void *vec)
{
	const VEC(char *) *v = vec;
	size_t i;

	if (!v->n)
		return;
	fprintf(out, " %s=", label);
	for (i = 0; i < v->n; i++)
		fprintf(out, "%s%s", i ? "," : "", v->v[i]);
}

void policy_explain(FILE *out, const struct policy *p)
{
	static const char *const src[] = { "env", "file", "cmd" };
	char wsbuf[PATH_MAX], buf[PATH_MAX + 64];
	const char *ws = workspace_of(p, wsbuf, sizeof(wsbuf));
	size_t i, j;

	fprintf(
	    out,
	    "# effective policy (explain builds nothing and runs nothing);\n"
	    "# every mount is at the same path inside the jail; origins say which line added it\n");
	for (i = 0; i < p->layers.n; i++)
		line(out, "layer", "", p->layers.v[i], "");
	if (p->argv && p->argv[0]) {
		size_t o = 0;

		buf[0] = '\0';
		for (i = 0; p->argv[i] && o < sizeof(buf) - 1; i++) {
			int n =
			    snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", p->argv[i]);

			if (n < 0)
				break;
			o += (size_t)n;
			if (o >= sizeof(buf))
				o = sizeof(buf) - 1;
		}
		line(out, "command", "", buf, "");
	}
	line(out, "network", p->net == NET_PROXY ? "proxy" : "none",
	     p->net == NET_PROXY ? "127.0.0.1:3128 inside, allowlist below" : "loopback only",
	     p->net_origin);
	for (i = 0; jail_system_dirs[i]; i++) {
		struct stat st;

		if (lstat(jail_system_dirs[i], &st) == 0)
			line(out, "mount", S_ISLNK(st.st_mode) ? "link" : "ro", jail_system_dirs[i],
			     "jail");
	}
	line(out, "mount", "ro", "/etc (curated: the files programs need)", "jail");
	line(out, "mount", "tmpfs", "$HOME, /tmp (empty, thrown away)", "jail");
	if (ws)
		line(out, "mount", "rw", ws, "workspace");
	for (i = 0; i < p->mounts.n; i++) {
		const struct mount_rule *m = &p->mounts.v[i];
		struct stat st;
		char mode[16];

		snprintf(mode, sizeof(mode), "%s%s", mode_name(m->mode), m->optional ? "?" : "");
		if (m->optional && lstat(m->path, &st) < 0)
			snprintf(buf, sizeof(buf), "%s (absent: skipped)", m->path);
		else
			snprintf(buf, sizeof(buf), "%s", m->path);
		line(out, "mount", mode, buf, m->origin);
	}
	for (i = 0; i < p->hosts.n; i++) {
		const struct host_rule *h = &p->hosts.v[i];

		host_str(buf, sizeof(buf), h->pattern, h->port);
		line(out, h->deny ? "deny" : "allow", "", buf, h->origin);
	}
	for (i = 0; i < p->host_maps.n; i++) {
		snprintf(buf, sizeof(buf), "%s=%s", p->host_maps.v[i].name,
			 p->host_maps.v[i].addr);
		line(out, "add-host", "", buf, p->host_maps.v[i].origin);
	}
	for (i = 0; i < p->env.n; i++) {
		const struct env_rule *e = &p->env.v[i];

		if (e->value)
			snprintf(buf, sizeof(buf), "%s=%s", e->name, e->value);
		else
			snprintf(buf, sizeof(buf), "%s", e->name);
		line(out, "env", e->value ? "set" : "pass", buf, e->origin);
	}
	for (i = 0; i < p->secrets.n; i++) {
		const struct secret_rule *s = &p->secrets.v[i];

		/* Never the value: name, where it comes from, where it may go. */
		fprintf(out, "%-9s %-8s %s ->", "secret", "", s->name);
		for (j = 0; j < s->hosts.n; j++)
			fprintf(out, "%s%s", j ? "," : " ", s->hosts.v[j]);
		fprintf(out, " source=%s:%s", src[s->source], s->source_arg ? s->source_arg : "");
		if (s->header)
			fprintf(out, " header=\"%s\"", s->header);
		if (s->in_query)
			fprintf(out, " query=yes");
		strvec_join(out, "methods", &s->methods);
		strvec_join(out, "paths", &s->paths);
		fprintf(out, "  %s\n", s->origin);
	}
	if (p->net == NET_PROXY && p->hosts.n == 0)
		line(out, "note", "", "network = proxy but no host is allowed: nothing passes", "");
	if (p->net == NET_NONE && (p->hosts.n || p->secrets.n))
		line(out, "note", "", "network = none: the hosts and secrets above are unused", "");
	if (p->upstream_ca)
		line(out, "upstream", "ca", p->upstream_ca, "--upstream-ca");
	if (p->log_path)
		line(out, "log", "", p->log_path, "--log");
}

/* ---------------------------------------------------------------- profiles */

struct listed {
	char *name;
	int level;
	char *source;
	char *desc;
};

static int cmp_listed(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->level - y->level;
}

/* The description of a profile text, or a note saying why it cannot be read. */
static char *describe(const char *display, const char *text, size_t len)
{
	char err[1024];
	struct pfile f = { .name = display, .text = text, .len = len, .err = err,
			   .errlen = sizeof(err) };
	char *d = NULL;
	size_t i;

	if (pf_parse(&f) < 0) {
		d = xasprintf("(invalid: %s)", err);
		pf_free(&f);
		return d;
	}
	for (i = 0; i < f.entries.n && !d; i++)
		if (f.entries.v[i].sec == SEC_PROFILE && !strcmp(f.entries.v[i].key, "description"))
			d = xstrdup(f.entries.v[i].value);
	pf_free(&f);
	return d ? d : xstrdup("");
}

static void list_dir(const char *dir, int level, void *vec)
{
	VEC(struct listed) *v = vec;
	VEC(char *) names = { 0 };
	size_t i;

	dir_profile_names(dir, &names);
	for (i = 0; i < names.n; i++) {
		char *path = xasprintf("%s/%s.ini", dir, names.v[i]), *text;
		struct listed *l;
		size_t len;

		l = VEC_PUSH(*v);
		l->name = xstrdup(names.v[i]);
		l->level = level;
		l->source = path;
		if (read_small_file(path, false, &text, &len) == 0) {
			l->desc = describe(path, text, len);
			free(text);
		} else {
			l->desc = xasprintf("(cannot read: %s)", strerror(errno));
		}
	}
	strvec_free(&names);
}

void policy_list_profiles(FILE *out)
{
	VEC(struct listed) v = { 0 };
	const struct builtin_profile *b;
	char *dir = user_dir();
	size_t i;

	for (b = builtin_profiles; b->name; b++) {
		struct listed *l = VEC_PUSH(v);
		char *display = xasprintf("%s.ini", b->name);

		l->name = xstrdup(b->name);
		l->level = LVL_BUILTIN;
		l->source = xstrdup("built-in");
		l->desc = describe(display, b->text, b->len);
		free(display);
	}
	if (dir)
		list_dir(dir, LVL_USER, &v);
	free(dir);
	list_dir(etc_dir(), LVL_ETC, &v);
	qsort(v.v, v.n, sizeof(v.v[0]), cmp_listed);
	fprintf(out, "%-12s %-44s %s\n", "NAME", "SOURCE", "DESCRIPTION");
	for (i = 0; i < v.n; i++) {
		struct listed *l = &v.v[i];
		bool shadowed = i > 0 && !strcmp(v.v[i - 1].name, l->name);
		char src[PATH_MAX + 32];

		snprintf(src, sizeof(src), "%s%s", l->source, shadowed ? " (overridden)" : "");
		fprintf(out, "%-12s %-44s %s\n", l->name, src, l->desc);
	}
	for (i = 0; i < v.n; i++) {
		free(v.v[i].name);
		free(v.v[i].source);
		free(v.v[i].desc);
	}
	free(v.v);
}
