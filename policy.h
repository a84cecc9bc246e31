/*
 * policy.h - the effective policy of one run: what the jail sees, where it may connect,
 * which secrets the proxy injects. Built by policy.c from built-in profiles, user
 * profiles, the workspace profile (tighten-only) and CLI flags, in that order; read by
 * jail.c (mounts, env), proxy.c (hosts), secrets.c (secrets).
 *
 * Every rule carries its origin ("node.ini:12", "--allow", "built-in") for explain and for
 * the audit log.
 */
#ifndef AGENTJAIL_POLICY_H
#define AGENTJAIL_POLICY_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

#define ORIGIN_MAX 128

enum mount_mode {
	MOUNT_RO,      /* read-only bind */
	MOUNT_RW,      /* read-write bind */
	MOUNT_HIDE,    /* empty tmpfs (dir) or /dev/null (file) over a path */
	MOUNT_OVERLAY, /* host copy visible, writes to a throw-away layer */
};

struct mount_rule {
	char *path; /* absolute, ~ expanded; mounted at the same path inside */
	char *source; /* the host path with links resolved, set by the monitor before the jail
		       * is built (NULL: it does not exist); init refuses any link in it */
	enum mount_mode mode;
	bool optional; /* skip silently when it does not exist */
	char origin[ORIGIN_MAX];
};

struct env_rule {
	char *name;
	char *value; /* NULL: pass the host's value through (if set) */
	char origin[ORIGIN_MAX];
};

/*
 * A host pattern: "example.com" (exact), "*.example.com" (subdomains, not the apex),
 * an IPv4/IPv6 literal, or an IP literal with prefix ("10.0.0.0/8") for address rules.
 * Stored lower-case without trailing dot. port 0 means "the default for the scheme"
 * (443 for CONNECT, 80 for plain HTTP); -1 means any port ("host:*").
 */
struct host_rule {
	char *pattern;
	int port;
	bool deny;
	char origin[ORIGIN_MAX];
};

/* --add-host NAME=ADDR: the proxy resolves NAME to ADDR, like curl --resolve. */
struct host_map {
	char *name;
	char *addr;
	char origin[ORIGIN_MAX];
};

enum secret_source {
	SECRET_ENV,  /* host environment variable (source_arg; default: the secret's name) */
	SECRET_FILE, /* contents of a file, trailing newline stripped */
	SECRET_CMD,  /* stdout of a command run by the proxy before the jail starts */
};

struct secret_rule {
	char *name; /* also the variable set (to the placeholder) inside the jail */
	enum secret_source source;
	char *source_arg;
	VEC(char *) hosts;   /* host patterns it is bound to */
	char *header;        /* "Authorization: Bearer {value}": set outright; NULL: substitute */
	bool in_query;       /* placeholder may be substituted in the URL query */
	VEC(char *) methods; /* empty: any */
	VEC(char *) paths;   /* path prefixes; empty: any */
	char *placeholder;   /* filled in by the proxy at start (never the value) */
	char origin[ORIGIN_MAX];
	bool optional;       /* profile "optional = yes": dropped at load when the source is absent */
};

enum net_mode {
	NET_NONE,  /* only lo, no proxy */
	NET_PROXY, /* only lo, the proxy listening on 127.0.0.1:PROXY_PORT inside */
};

#define PROXY_PORT 3128

struct policy {
	char *workspace;     /* absolute, canonical */
	char *const *argv;   /* the command */
	char *profile;       /* name or file given by --profile (NULL: default) */
	enum net_mode net;
	char net_origin[ORIGIN_MAX];
	VEC(struct mount_rule) mounts;
	VEC(struct env_rule) env;
	VEC(struct host_rule) hosts;
	VEC(struct host_map) host_maps;
	VEC(struct secret_rule) secrets;
	char *upstream_ca; /* extra CA file the proxy trusts upstream (tests, private services) */
	char *log_path;    /* --log FILE: JSON lines audit log */
	bool quiet;        /* -q: no exit summary */
	bool trust_workspace; /* workspace profile may widen */
	VEC(char *) layers;   /* profile files applied, in order, with their source (for explain) */
};

void policy_init(struct policy *p);

/* Adders used by the CLI and the profile parser. Return 0, or -1 with *err set (static text). */
int policy_add_mount(struct policy *p, const char *path, enum mount_mode mode, bool optional,
		     const char *origin, const char **err);
int policy_add_env(struct policy *p, const char *spec /* NAME or NAME=VALUE */, const char *origin,
		   const char **err);
int policy_add_host(struct policy *p, const char *spec /* PATTERN[:PORT] */, bool deny,
		    const char *origin, const char **err);
int policy_add_host_map(struct policy *p, const char *spec /* NAME=ADDR */, const char *origin,
			const char **err);
int policy_add_secret(struct policy *p, const char *spec /* NAME@HOST[,HOST...] */,
		      const char *origin, const char **err);

/*
 * Load profiles in order: built-in "default", then the named profile (built-in name,
 * user profile name, or a file path), then the workspace's .agentjail.ini (tighten-only
 * unless trusted). Called by the CLI before its flags are applied. Exits 125 on error
 * with "agentjail: FILE:LINE: what is wrong".
 */
void policy_load_profiles(struct policy *p, const char *profile);
/*
 * The same without exiting: 0, or -1 with "FILE:LINE: what is wrong" in err. On error p
 * holds a partial policy that must not be used (policy_free it).
 */
int policy_load(struct policy *p, const char *profile, char *err, size_t errlen);
/*
 * Apply one profile text (as if read from a file named name) on top of p; untrusted: the
 * workspace rules (tighten-only). inherit names are resolved like --profile. For tests
 * and fuzzing. 0, or -1 with the message in err.
 */
int policy_load_text(struct policy *p, const char *name, const char *text, size_t len,
		     bool untrusted, char *err, size_t errlen);
/* Release the rules and layers policy.c allocated (not workspace, profile, log_path,
 * upstream_ca: the caller owns those); they are left empty. */
void policy_free(struct policy *p);

/* Print the effective policy, each line tagged with its origin. */
void policy_explain(FILE *out, const struct policy *p);
/* List the profiles visible, with description and source. */
void policy_list_profiles(FILE *out);

/* Host matching (case-insensitive, normalised). Returns the deciding rule or NULL. */
const struct host_rule *policy_match_host(const struct policy *p, const char *host, int port,
					  int default_port);

#endif
