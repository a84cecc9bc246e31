/*
 * agentjail.c - the CLI and the monitor: parse flags into a policy, start the proxy, build
 * the jail, forward signals, and exit with the command's status.
 *
 * Exit status: the command's; 128+N if it died of signal N; 125 when agentjail could not
 * build the jail; 126 not executable; 127 not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard.h"
#include "jail.h"
#include "policy.h"
#include "proxy.h"
#include "pty.h"
#include "seccomp.h"

extern char **environ;

static volatile sig_atomic_t init_pid;
/* The command's own terminal, when the caller gave it one (pty.c). */
static struct pty tty = { .master = -1, .slave = -1, .in = -1, .out = -1, .feed_r = -1,
			  .feed_w = -1 };
static pid_t monitor_pid;

/* A monitor that dies with the caller's terminal in raw mode gives it its modes back. */
static void restore_tty(void)
{
	if (getpid() == monitor_pid)
		pty_restore(&tty);
}
static char **orig_argv; /* overwritten in init: /proc/1/cmdline shows nothing */

/* Host variables that may enter the jail unasked: none of them carries a credential. */
static const char *const env_allow[] = {
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "TZ", "COLORTERM",
	"NO_COLOR", "FORCE_COLOR", "CLICOLOR", "COLUMNS", "LINES", "EDITOR", "VISUAL", "PAGER",
	"CI", NULL,
};

/* Variables naming the CA bundle: those that replace the trust set get the combined bundle. */
static const char *const ca_replace_vars[] = {
	"SSL_CERT_FILE",     "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",   "GIT_SSL_CAINFO",
	"CARGO_HTTP_CAINFO", "PIP_CERT",           "AWS_CA_BUNDLE",    "NPM_CONFIG_CAFILE",
	"npm_config_cafile", "HEX_CACERTS_PATH",   "BUNDLE_SSL_CA_CERT", NULL,
};
static const char *const ca_extra_vars[] = { "NODE_EXTRA_CA_CERTS", "DENO_CERT", NULL };
#define CA_BUNDLE "/etc/agentjail/ca-bundle.pem"
#define CA_RUN	  "/etc/agentjail/run-ca.pem"

enum {
	OPT_RO = 256,
	OPT_RW,
	OPT_HIDE,
	OPT_OVERLAY,
	OPT_ENV,
	OPT_NET,
	OPT_ALLOW,
	OPT_DENY,
	OPT_ADD_HOST,
	OPT_SECRET,
	OPT_UPSTREAM_CA,
	OPT_LOG,
	OPT_PROFILE,
	OPT_TRUST,
};

static const struct option long_opts[] = {
	{ "workspace", required_argument, NULL, 'C' },
	{ "profile", required_argument, NULL, OPT_PROFILE },
	{ "ro", required_argument, NULL, OPT_RO },
	{ "rw", required_argument, NULL, OPT_RW },
	{ "hide", required_argument, NULL, OPT_HIDE },
	{ "overlay", required_argument, NULL, OPT_OVERLAY },
	{ "env", required_argument, NULL, OPT_ENV },
	{ "net", required_argument, NULL, OPT_NET },
	{ "allow", required_argument, NULL, OPT_ALLOW },
	{ "deny", required_argument, NULL, OPT_DENY },
	{ "add-host", required_argument, NULL, OPT_ADD_HOST },
	{ "secret", required_argument, NULL, OPT_SECRET },
	{ "upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "trust-workspace", no_argument, NULL, OPT_TRUST },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
	fputs("Usage: agentjail [OPTION]... [--] COMMAND [ARG]...\n"
	      "  or:  agentjail check | profiles | explain [OPTION]... [-- COMMAND [ARG]...]\n"
	      "Run COMMAND in a throw-away jail that sees only the workspace; its network goes\n"
	      "through agentjail's proxy, which holds the real credentials.\n"
	      "\n"
	      "  -C, --workspace=DIR       the workspace, bound read-write (default: .)\n"
	      "      --profile=NAME        a built-in or user profile, or an .ini file\n"
	      "      --ro=PATH, --rw=PATH  bind PATH read-only / read-write\n"
	      "      --hide=PATH           cover PATH with an empty read-only mount\n"
	      "      --overlay=PATH        show PATH, writes to a throw-away layer (caches)\n"
	      "      --env=NAME[=VALUE]    pass NAME from the host, or set it\n"
	      "      --net=MODE            none (offline) or proxy\n"
	      "      --allow=HOST[:PORT]   let the proxy reach HOST (*.x.com: subdomains)\n"
	      "      --deny=HOST[:PORT]    refuse HOST (deny rules win)\n"
	      "      --add-host=NAME=ADDR  resolve NAME to ADDR in the proxy\n"
	      "      --secret=NAME@HOST[,HOST]...  inject $NAME on requests to HOST only\n"
	      "      --upstream-ca=FILE    also trust FILE for upstream TLS\n"
	      "      --log=FILE            append a JSON-lines audit log of proxy decisions\n"
	      "      --trust-workspace     let the workspace's .agentjail.ini widen the jail\n"
	      "  -q, --quiet               no summary line on exit\n"
	      "  -h, --help                display this help and exit\n"
	      "  -V, --version             output version information and exit\n"
	      "Exit status: COMMAND's; 128+N if it died of signal N; 125 if the jail could not\n"
	      "be built; 126 if COMMAND cannot run; 127 if not found.  See agentjail(1).\n",
	      out);
}

static void version(void)
{
	printf("agentjail %s\n", AGENTJAIL_VERSION);
	printf("built with %s, libcap %s, inih %s; filters compiled by libseccomp %s\n",
	       OPENSSL_VERSION_TEXT, LIBCAP_VERSION, INIH_VERSION, seccomp_built_with);
	printf("running %s\n", OpenSSL_version(OPENSSL_VERSION));
}

/* A flag as given, applied after the profiles so that flags win. */
struct flag {
	int opt;
	const char *arg;
};

struct cli {
	const char *workspace;
	const char *profile;
	bool net_set;
	enum net_mode net;
	VEC(struct flag) flags;
};

static void parse_args(int argc, char **argv, struct cli *c, int *optind_out)
{
	int o;

	/* '+': stop at the first non-option, so the command's own flags stay its own;
	 * ':': report errors ourselves, in the agentjail: form. */
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:C:qhV", long_opts, NULL)) != -1) {
		switch (o) {
		case 'C':
			c->workspace = optarg;
			break;
		case OPT_PROFILE:
			c->profile = optarg;
			break;
		case OPT_NET:
			if (!strcmp(optarg, "none"))
				c->net = NET_NONE;
			else if (!strcmp(optarg, "proxy"))
				c->net = NET_PROXY;
			else
				die("--net %s: expected 'none' or 'proxy'", optarg);
			c->net_set = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			version();
			exit(0);
		case '?':
			if (optopt)
				msg("unknown option -%c; try 'agentjail --help'", optopt);
			else
				msg("unknown option %s; try 'agentjail --help'", argv[optind - 1]);
			exit(EXIT_JAIL_FAILED);
		case ':':
			msg("option %s needs an argument; try 'agentjail --help'",
			    argv[optind - 1]);
			exit(EXIT_JAIL_FAILED);
		default: {
			struct flag *f = VEC_PUSH(c->flags);

			f->opt = o;
			f->arg = optarg;
		}
		}
	}
	*optind_out = optind;
}

static void apply_flag(struct policy *p, const struct flag *f)
{
	const char *err = NULL;
	const char *name = "";
	int rc = 0;

	switch (f->opt) {
	case OPT_RO:
		name = "--ro";
		rc = policy_add_mount(p, f->arg, MOUNT_RO, false, name, &err);
		break;
	case OPT_RW:
		name = "--rw";
		rc = policy_add_mount(p, f->arg, MOUNT_RW, false, name, &err);
		break;
	case OPT_HIDE:
		name = "--hide";
		rc = policy_add_mount(p, f->arg, MOUNT_HIDE, false, name, &err);
		break;
	case OPT_OVERLAY:
		name = "--overlay";
		rc = policy_add_mount(p, f->arg, MOUNT_OVERLAY, false, name, &err);
		break;
	case OPT_ENV:
		name = "--env";
		rc = policy_add_env(p, f->arg, name, &err);
		break;
	case OPT_ALLOW:
		name = "--allow";
		rc = policy_add_host(p, f->arg, false, name, &err);
		break;
	case OPT_DENY:
		name = "--deny";
		rc = policy_add_host(p, f->arg, true, name, &err);
		break;
	case OPT_ADD_HOST:
		name = "--add-host";
		rc = policy_add_host_map(p, f->arg, name, &err);
		break;
	case OPT_SECRET:
		name = "--secret";
		rc = policy_add_secret(p, f->arg, name, &err);
		break;
	case OPT_UPSTREAM_CA:
		name = "--upstream-ca";
		if (access(f->arg, R_OK))
			die("--upstream-ca %s: %s", f->arg, strerror(errno));
		p->upstream_ca = xstrdup(f->arg);
		break;
	case OPT_LOG:
		p->log_path = xstrdup(f->arg);
		break;
	case OPT_TRUST:
		p->trust_workspace = true;
		break;
	case 'q':
		p->quiet = true;
		break;
	}
	if (rc)
		die("%s %s: %s", name, f->arg, err ? err : "invalid");
}

static bool flag_given(const struct cli *c, int opt)
{
	size_t i;

	for (i = 0; i < c->flags.n; i++)
		if (c->flags.v[i].opt == opt)
			return true;
	return false;
}

/* Refuse workspaces that would expose what the jail exists to hide. */
static char *resolve_workspace(const char *dir)
{
	const char *home = getenv("HOME");
	char *ws = realpath(dir ? dir : ".", NULL);
	char *rhome;
	size_t n;

	if (!ws)
		die("-C %s: %s", dir ? dir : ".", strerror(errno));
	rhome = home ? realpath(home, NULL) : NULL;
	if (!strcmp(ws, "/"))
		die("the workspace is /: run agentjail from a project directory or pass -C DIR");
	if (rhome) {
		n = strlen(ws);
		if (!strncmp(rhome, ws, n) && (rhome[n] == '/' || rhome[n] == '\0'))
			die("the workspace %s contains your home directory (~/.ssh, ~/.aws, ...): "
			    "run agentjail from a project directory or pass -C DIR",
			    ws);
	}
	free(rhome);
	return ws;
}

static bool is_system_path(const char *dir)
{
	size_t i, n;

	for (i = 0; jail_system_dirs[i]; i++) {
		n = strlen(jail_system_dirs[i]);
		if (!strncmp(dir, jail_system_dirs[i], n) && (dir[n] == '/' || dir[n] == '\0'))
			return true;
	}
	return false;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/*
 * The directory of the command as PATH finds it, when it lives outside the system dirs
 * (a toolchain under $HOME), to bind read-only. Never a directory reached through the
 * workspace (a link planted there would otherwise expose its target's directory), and
 * never one that holds $HOME or the workspace.
 */
static char *command_dir(const char *cmd, const char *ws)
{
	const char *path = getenv("PATH"), *home = getenv("HOME");
	char buf[PATH_MAX], *real, *given, *rhome, *slash;
	bool found = false, bad;

	if (strchr(cmd, '/')) {
		if (cmd[0] != '/')
			return NULL; /* relative: resolved inside the jail, from the workspace */
		found = snprintf(buf, sizeof(buf), "%s", cmd) < (int)sizeof(buf);
	} else {
		const char *p = path ? path : "/usr/bin:/bin";

		while (*p && !found) {
			size_t len = strcspn(p, ":");

			/* relative PATH entries would resolve against the workspace: skip */
			if (len && *p == '/' &&
			    snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, p, cmd) <
				    (int)sizeof(buf))
				found = access(buf, X_OK) == 0;
			p += len + (p[len] == ':');
		}
	}
	if (!found)
		return NULL;
	slash = strrchr(buf, '/');
	*slash = '\0';
	given = realpath(buf[0] ? buf : "/", NULL);
	*slash = '/';
	real = realpath(buf, NULL);
	if (!given || !real) {
		free(given);
		free(real);
		return NULL;
	}
	*strrchr(real, '/') = '\0';
	rhome = home ? realpath(home, NULL) : NULL;
	bad = under(given, ws) || !real[0] || is_system_path(real) || under(real, ws) ||
	      under(ws, real) || (rhome && under(rhome, real));
	free(given);
	free(rhome);
	if (bad) {
		free(real);
		return NULL;
	}
	return real;
}

/* ---- the command's environment ------------------------------------------------------- */

struct strvec {
	char **v;
	size_t n, cap;
};

static void env_set(struct strvec *e, const char *name, const char *value)
{
	size_t n = strlen(name), i;
	char *kv = xasprintf("%s=%s", name, value);

	for (i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], name, n) && e->v[i][n] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	*VEC_PUSH(*e) = kv;
}

static bool env_allowed(const char *kv)
{
	size_t i, n = strcspn(kv, "=");

	if (!strncmp(kv, "LC_", 3))
		return true;
	for (i = 0; env_allow[i]; i++)
		if (strlen(env_allow[i]) == n && !strncmp(kv, env_allow[i], n))
			return true;
	return false;
}

static char **build_env(const struct policy *p, const struct proxy *px)
{
	struct strvec e = { 0 };
	char **h, url[64];
	size_t i;

	for (h = environ; h && *h; h++)
		if (env_allowed(*h))
			*VEC_PUSH(e) = xstrdup(*h);
	env_set(&e, "TMPDIR", "/tmp");
	for (i = 0; i < p->env.n; i++) {
		const struct env_rule *r = &p->env.v[i];
		const char *v = r->value ? r->value : getenv(r->name);

		if (v)
			env_set(&e, r->name, v);
	}
	if (p->net == NET_PROXY) {
		static const char *const vars[] = { "HTTP_PROXY",	"HTTPS_PROXY",
						    "http_proxy",	"https_proxy",
						    "ALL_PROXY",	"all_proxy",
						    "npm_config_proxy", "npm_config_https_proxy",
						    NULL };

		snprintf(url, sizeof(url), "http://127.0.0.1:%d", PROXY_PORT);
		for (i = 0; vars[i]; i++)
			env_set(&e, vars[i], url);
		env_set(&e, "NO_PROXY", "localhost,127.0.0.1,::1");
		env_set(&e, "no_proxy", "localhost,127.0.0.1,::1");
		env_set(&e, "NODE_USE_ENV_PROXY", "1");
	}
	if (px && px->ca_pem) {
		for (i = 0; ca_replace_vars[i]; i++)
			env_set(&e, ca_replace_vars[i], CA_BUNDLE);
		for (i = 0; ca_extra_vars[i]; i++)
			env_set(&e, ca_extra_vars[i], CA_RUN);
	}
	for (i = 0; i < p->secrets.n; i++)
		if (p->secrets.v[i].placeholder)
			env_set(&e, p->secrets.v[i].name, p->secrets.v[i].placeholder);
	*VEC_PUSH(e) = NULL;
	return e.v;
}

/*
 * The proxy has read the secret values; none may stay in this process's memory, where
 * the jail's init (a copy of it) would carry them. Overwrite them in the environment
 * block itself: unsetenv() alone would leave the bytes where /proc/PID/environ reads.
 */
static void wipe_secret_env(const struct policy *p)
{
	char **e;
	size_t i;

	for (i = 0; i < p->secrets.n; i++) {
		const struct secret_rule *s = &p->secrets.v[i];
		const char *var = s->source == SECRET_ENV && s->source_arg ? s->source_arg
									     : s->name;
		size_t n = strlen(var);

		for (e = environ; e && *e; e++)
			if (!strncmp(*e, var, n) && (*e)[n] == '=')
				wipe(*e + n + 1, strlen(*e + n + 1));
	}
}

/* ---- signals ------------------------------------------------------------------------- */

static const int fwd_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2 };

static void forward(int sig, siginfo_t *si, void *uc)
{
	int e = errno;

	(void)uc;
	if (sig == SIGWINCH && tty.master >= 0)
		pty_winch(&tty); /* the command's own terminal takes the new size */
	/*
	 * A signal the terminal sent (Ctrl-C, a resize) went to our whole process group, and
	 * init is in it: init forwards it already, and a second copy one hop later would not
	 * merge with the first (two Ctrl-C quit many programs). A hang-up goes to the session
	 * leader only: when that is agentjail (ssh -t, xterm -e), pass it on.
	 */
	else if ((!(si && si->si_code == SI_KERNEL) || (sig == SIGHUP && getsid(0) == getpid())) &&
		 init_pid > 0)
		kill(init_pid, sig);
	errno = e;
}

static void install_forwarding(void)
{
	struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(fwd_signals) / sizeof(fwd_signals[0]); i++)
		sigaction(fwd_signals[i], &sa, NULL);
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_JAIL_FAILED;
}

/* ---- subcommands --------------------------------------------------------------------- */

static int cmd_check(void)
{
	char why[1024];
	int rc = jail_diagnose(why, sizeof(why));

	if (rc) {
		msg("cannot build a jail here: %s", why);
		return 1;
	}
	printf("agentjail: %s (user, mount, pid, net, ipc, uts, cgroup namespaces; seccomp)\n",
	       why);
	return 0;
}

static void build_policy(struct policy *p, struct cli *c, char **argv)
{
	size_t i;

	policy_init(p);
	p->workspace = resolve_workspace(c->workspace);
	p->argv = argv;
	for (i = 0; i < c->flags.n; i++)
		if (c->flags.v[i].opt == OPT_TRUST)
			p->trust_workspace = true; /* decides how the workspace profile loads */
	policy_load_profiles(p, c->profile);
	for (i = 0; i < c->flags.n; i++)
		apply_flag(p, &c->flags.v[i]);
	/*
	 * Network: --net decides. Otherwise the profiles' mode stands, except that an --allow
	 * or --secret flag on the command line asks for the proxy. A profile's own hosts do
	 * not: a workspace profile's "network = none" must stay none.
	 */
	if (c->net_set) {
		p->net = c->net;
		snprintf(p->net_origin, sizeof(p->net_origin), "--net");
	} else if (p->net == NET_NONE && (flag_given(c, OPT_ALLOW) || flag_given(c, OPT_SECRET))) {
		p->net = NET_PROXY;
		snprintf(p->net_origin, sizeof(p->net_origin), "%s",
			 flag_given(c, OPT_ALLOW) ? "--allow" : "--secret");
	}
	if (p->net == NET_NONE && flag_given(c, OPT_SECRET))
		die("--secret: the jail is offline (--net none or network = none), so a secret "
		    "cannot be used; drop --secret or use --net proxy");
}

/*
 * Resolve every mount's source on the host now; init then opens exactly that path and
 * refuses a symbolic link anywhere in it, so a link swapped in meanwhile (by another run
 * on the same workspace) fails the jail instead of redirecting a bind.
 */
static void resolve_sources(struct policy *p)
{
	size_t i;

	for (i = 0; i < p->mounts.n; i++) {
		struct mount_rule *m = &p->mounts.v[i];

		free(m->source);
		m->source = realpath(m->path, NULL);
		if (!m->source && errno != ENOENT && errno != ENOTDIR)
			die("%s (%s): %s", m->path, m->origin, strerror(errno));
	}
}

/*
 * The audit log must be out of the jail's reach: a log the jail can write can be forged,
 * or replaced by a link that aims the next run's appends at a file of the user's.
 */
static void check_log_path(const struct policy *p)
{
	char *dir, *slash, *real;
	size_t i;

	if (!p->log_path)
		return;
	dir = xstrdup(p->log_path);
	slash = strrchr(dir, '/');
	if (!slash)
		real = realpath(".", NULL);
	else if (slash == dir)
		real = realpath("/", NULL);
	else {
		*slash = '\0';
		real = realpath(dir, NULL);
	}
	free(dir);
	if (!real)
		die("--log %s: %s", p->log_path, strerror(errno));
	for (i = 0; i < p->mounts.n; i++) {
		const struct mount_rule *m = &p->mounts.v[i];

		if ((m->mode == MOUNT_RW) && m->source && under(real, m->source))
			die("--log %s: inside %s, which the jail can write (%s); put the log "
			    "outside the workspace",
			    p->log_path, m->source, m->origin);
	}
	free(real);
}

static void proxy_died(struct proxy *px, int st)
{
	if (WIFSIGNALED(st))
		msg("the proxy died (signal %d); the jail had no network from then on",
		    WTERMSIG(st));
	else
		msg("the proxy exited (status %d); the jail had no network from then on",
		    WEXITSTATUS(st));
	px->pid = -1;
}

/*
 * Wait for init. The proxy is our child too: if it dies first, the jail has no network
 * from then on (its listener has no reader); say so, once, and keep waiting.
 */
static void wait_jail(pid_t init, struct proxy *px, int *status)
{
	int st;
	pid_t w;

	for (;;) {
		w = waitpid(-1, &st, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die_errno("waitpid");
		}
		if (w == init) {
			*status = st;
			return;
		}
		if (px->pid > 0 && w == px->pid)
			proxy_died(px, st);
	}
}

static char *const *copy_argv(char *const *argv)
{
	size_t n = 0, i;
	char **v;

	while (argv[n])
		n++;
	v = xcalloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = xstrdup(argv[i]);
	return v;
}

/* The second byte on the ready pipe: the command's exit code; false if init died first. */
static bool read_code(int fd, int *code)
{
	unsigned char b;

	if (read_all(fd, &b, 1))
		return false;
	*code = b;
	return true;
}

static int run(struct policy *p)
{
	static struct proxy px = { .pid = -1, .ctl = -1 };
	static struct jail j = { .proxy_ctl = -1, .tty_fd = -1, .stdin_fd = -1 };
	int ready[2], alive[2], status, code;
	char why[1024], byte;
	bool defer;
	sigset_t all, old;
	ssize_t n;
	pid_t pid;

	j.p = p;
	if (!p->argv || !p->argv[0])
		die("no command given; try 'agentjail --help'");
	if (getuid() != geteuid())
		die("refusing to run setuid: agentjail needs no privilege");
	pty_check_stdio(); /* before anything is started or written */
	guard_protect(p, p->workspace);
	if (policy_add_mount(p, p->workspace, MOUNT_RW, false, "workspace", &(const char *){ 0 }))
		die("cannot bind the workspace %s", p->workspace);
	resolve_sources(p);
	check_log_path(p);
	j.exe_dir = command_dir(p->argv[0], p->workspace);
	j.wipe_argv = orig_argv;
	p->argv = copy_argv(p->argv);
	j.uid = getuid();
	{
		struct passwd *pw = getpwuid(j.uid);

		j.user = pw ? xstrdup(pw->pw_name) : NULL;
	}
	j.gid = getgid();

	/*
	 * Without secrets the proxy's start-up report carries nothing the jail is built
	 * from (no placeholders, no CA), so the jail is built while the proxy starts and the
	 * report is read before init may run the command.
	 */
	defer = p->net == NET_PROXY && p->secrets.n == 0;
	if (p->net == NET_PROXY) {
		if (proxy_fork(p, &px) || (!defer && proxy_ready(p, &px))) {
			guard_abort();
			exit(EXIT_JAIL_FAILED);
		}
		j.proxy_ctl = px.ctl;
		j.ca_pem = px.ca_pem;
		j.ca_pem_len = px.ca_pem_len;
	}
	wipe_secret_env(p);
	j.envp = build_env(p, &px);

	if (pipe2(ready, O_CLOEXEC) || pipe2(alive, O_CLOEXEC))
		die_errno("pipe");
	j.ready_fd = ready[1];
	j.alive_fd = alive[0];
	/* After the proxy's fork: the proxy never holds the command's terminal. */
	pty_open(&tty);
	j.tty_fd = tty.slave;
	j.tty_map = tty.map;
	j.null_stdin = tty.null_stdin;
	j.stdin_fd = tty.feed_r;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	install_forwarding();
	pid = jail_spawn(&j);
	if (pid < 0) {
		int e = errno;

		sigprocmask(SIG_SETMASK, &old, NULL);
		if (px.pid > 0)
			proxy_stop(&px);
		guard_abort();
		if (jail_diagnose(why, sizeof(why)))
			die("cannot build the jail: %s", why);
		errno = e;
		die_errno("cannot create the jail's namespaces");
	}
	init_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(ready[1]);
	if (defer && proxy_ready(p, &px)) {
		/* init is still waiting for the go below: the command never ran */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		guard_abort();
		exit(EXIT_JAIL_FAILED);
	}
	if (px.ctl >= 0) {
		close(px.ctl); /* init holds its copy; the proxy must see it close with init */
		px.ctl = -1;
	}
	/* The relay runs before the command does: a relay that cannot start stops it all. */
	monitor_pid = getpid();
	die_hook = restore_tty;
	pty_start(&tty);
	/* The go for init. alive[0] is still open here, so an init that already died cannot
	 * make this write raise SIGPIPE; its failure shows on the ready pipe below. */
	if (write_all(alive[1], "g", 1))
		kill(pid, SIGKILL); /* never left waiting: the ready pipe below reports it */
	close(alive[0]);

	do
		n = read(ready[0], &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && read_code(ready[0], &code)) {
		/* init reported the command's status once the rest of the jail was gone;
		 * it exits on its own (and dies with us): no need to wait for its teardown. */
		if (px.pid > 0 && waitpid(px.pid, &status, WNOHANG) == px.pid)
			proxy_died(&px, status);
	} else {
		wait_jail(pid, &px, &status);
		code = status_code(status);
	}
	if (n != 1) {
		/* init failed before the command ran; it said why on stderr. */
		if (jail_diagnose(why, sizeof(why)))
			msg("%s", why);
		code = EXIT_JAIL_FAILED;
	}
	pty_finish(&tty); /* the command's last output, then the caller's modes back */
	if (px.pid > 0)
		proxy_stop(&px);
	guard_check();
	return code;
}

int main(int argc, char **argv)
{
	/* Static: what the monitor allocates lives as long as it does, and stays reachable. */
	static struct cli c = { .net = NET_NONE };
	static struct policy p;
	int first;

	orig_argv = argv;
	if (argc > 1 && !strcmp(argv[1], "check"))
		return cmd_check();
	if (argc > 1 && !strcmp(argv[1], "profiles")) {
		policy_list_profiles(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "explain")) {
		parse_args(argc - 1, argv + 1, &c, &first);
		build_policy(&p, &c, argv + 1 + first);
		policy_explain(stdout, &p);
		policy_free(&p);
		free(p.workspace);
		free(c.flags.v);
		return 0;
	}
	parse_args(argc, argv, &c, &first);
	build_policy(&p, &c, argv + first);
	return run(&p);
}
