/*
 * test_policy.c - the profile language, layering and trust, host patterns, explain and
 * the profile listing of policy.c. Prints "N passed, M failed"; exits 1 on a failure.
 * Works in a private temporary directory ($HOME, $XDG_CONFIG_HOME, the workspace).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "util.h"

#include "check.h"

static char tmp[256], home[300], xdg[300], ws[300], etc[300];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(2);
	}
}

static void fresh(struct policy *p)
{
	policy_init(p);
	p->workspace = ws;
}

/* Apply text as a profile; 0 or -1 with the message in err. */
static int text(struct policy *p, const char *t, bool untrusted, char *err, size_t n)
{
	return policy_load_text(p, untrusted ? "ws.ini" : "t.ini", t, strlen(t), untrusted, err,
				n);
}

/* The error a text gives on a fresh policy (static buffer). */
static const char *err_of(const char *t, bool untrusted)
{
	static char err[2048];
	struct policy p;

	fresh(&p);
	if (text(&p, t, untrusted, err, sizeof(err)) == 0)
		snprintf(err, sizeof(err), "(no error)");
	policy_free(&p);
	return err;
}

static bool has(const char *hay, const char *needle)
{
	bool r = strstr(hay, needle) != NULL;

	if (!r)
		fprintf(stderr, "  expected \"%s\" in: %s\n", needle, hay);
	return r;
}

static char *explain(const struct policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	policy_explain(f, p);
	fclose(f);
	return buf;
}

static const struct mount_rule *mount_of(const struct policy *p, const char *path)
{
	for (size_t i = 0; i < p->mounts.n; i++)
		if (!strcmp(p->mounts.v[i].path, path))
			return &p->mounts.v[i];
	return NULL;
}

static void test_hosts(void)
{
	struct policy p;
	const char *err;

	fresh(&p);
	CHECK(policy_add_host(&p, "Example.COM.", false, "--allow", &err) == 0);
	CHECK(!strcmp(p.hosts.v[0].pattern, "example.com") && p.hosts.v[0].port == 0);
	CHECK(policy_add_host(&p, "*.Foo.org:8443", false, "--allow", &err) == 0);
	CHECK(!strcmp(p.hosts.v[1].pattern, "*.foo.org") && p.hosts.v[1].port == 8443);
	CHECK(policy_add_host(&p, "any.test:*", false, "--allow", &err) == 0);
	CHECK(p.hosts.v[2].port == -1);
	CHECK(policy_add_host(&p, "[::1]:443", false, "--allow", &err) == 0);
	CHECK(!strcmp(p.hosts.v[3].pattern, "::1") && p.hosts.v[3].port == 443);
	CHECK(policy_add_host(&p, "10.1.2.3/8", false, "--allow", &err) == 0);
	CHECK(!strcmp(p.hosts.v[4].pattern, "10.0.0.0/8"));
	CHECK(policy_add_host(&p, "bad.foo.org", true, "--deny", &err) == 0);
	/* the same rule twice is kept once */
	CHECK(policy_add_host(&p, "example.com", false, "x", &err) == 0 && p.hosts.n == 6);

	CHECK(policy_match_host(&p, "EXAMPLE.com.", 443, 443) == &p.hosts.v[0]);
	CHECK(policy_match_host(&p, "example.com", 8443, 443) == NULL);
	CHECK(policy_match_host(&p, "sub.example.com", 443, 443) == NULL);
	CHECK(policy_match_host(&p, "a.foo.org", 8443, 443) == &p.hosts.v[1]);
	CHECK(policy_match_host(&p, "foo.org", 8443, 443) == NULL); /* not the apex */
	CHECK(policy_match_host(&p, "a.foo.org", 443, 443) == NULL);
	CHECK(policy_match_host(&p, "any.test", 1234, 443) == &p.hosts.v[2]);
	CHECK(policy_match_host(&p, "bad.foo.org", 8443, 443) == &p.hosts.v[5]); /* deny wins */
	CHECK(policy_match_host(&p, "10.9.9.9", 443, 443) == &p.hosts.v[4]);
	CHECK(policy_match_host(&p, "11.0.0.1", 443, 443) == NULL);

	static const char *const bad[] = { "",		"a*.b.com",  "*.",	  "foo..bar",
					   "x.com:0",	"x.com:70000", "[::1",	  "1.2.3.4/33",
					   "-a.com",	"a b",	       "x.com:ab", "foo.com/8",
					   "a.*.com",	"[::1]x",      NULL };
	for (int i = 0; bad[i]; i++) {
		err = NULL;
		CHECK(policy_add_host(&p, bad[i], false, "--allow", &err) == -1 && err);
		if (p.hosts.n != 6)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
	}
	CHECK(p.hosts.n == 6);
	policy_free(&p);
}

static void test_adders(void)
{
	struct policy p;
	const char *err;

	fresh(&p);
	CHECK(policy_add_env(&p, "FOO", "--env", &err) == 0 && !p.env.v[0].value);
	CHECK(policy_add_env(&p, "FOO=a=b", "--env", &err) == 0 && p.env.n == 1);
	CHECK(!strcmp(p.env.v[0].value, "a=b"));
	CHECK(policy_add_env(&p, "1X=2", "--env", &err) == -1);
	CHECK(policy_add_env(&p, "=x", "--env", &err) == -1);
	CHECK(policy_add_env(&p, "A-B", "--env", &err) == -1);

	CHECK(policy_add_host_map(&p, "Api.Test=127.0.0.1", "--add-host", &err) == 0);
	CHECK(!strcmp(p.host_maps.v[0].name, "api.test"));
	CHECK(policy_add_host_map(&p, "api.test=[::1]", "--add-host", &err) == 0);
	CHECK(p.host_maps.n == 1 && !strcmp(p.host_maps.v[0].addr, "::1"));
	CHECK(policy_add_host_map(&p, "api.test=not-an-ip", "x", &err) == -1);
	CHECK(policy_add_host_map(&p, "=1.2.3.4", "x", &err) == -1);

	CHECK(policy_add_secret(&p, "TOKEN@api.github.com,GitHub.com", "--secret", &err) == 0);
	CHECK(p.secrets.n == 1 && p.secrets.v[0].hosts.n == 2);
	CHECK(p.secrets.v[0].source == SECRET_ENV && !strcmp(p.secrets.v[0].source_arg, "TOKEN"));
	CHECK(!strcmp(p.secrets.v[0].hosts.v[1], "github.com"));
	CHECK(policy_add_secret(&p, "TOKEN", "--secret", &err) == -1);
	CHECK(policy_add_secret(&p, "TOKEN@", "--secret", &err) == -1);
	CHECK(policy_add_secret(&p, "9T@x.com", "--secret", &err) == -1);
	CHECK(policy_add_secret(&p, "T@x.com:443", "--secret", &err) == -1);
	CHECK(policy_add_secret(&p, "T@*", "--secret", &err) == -1);
	CHECK(policy_add_secret(&p, "T@bad..host", "--secret", &err) == -1);
	CHECK(p.secrets.n == 1);

	/* paths: ~ and $HOME expand, relative and .. refused, slashes normalised */
	CHECK(policy_add_mount(&p, "~/.npm/", MOUNT_OVERLAY, true, "--overlay", &err) == 0);
	char want[400];
	snprintf(want, sizeof(want), "%s/.npm", home);
	CHECK(mount_of(&p, want) && mount_of(&p, want)->optional);
	CHECK(policy_add_mount(&p, "${HOME}//x", MOUNT_RO, false, "--ro", &err) == 0);
	snprintf(want, sizeof(want), "%s/x", home);
	CHECK(mount_of(&p, want) != NULL);
	CHECK(policy_add_mount(&p, "rel/path", MOUNT_RO, false, "--ro", &err) == -1);
	CHECK(strstr(err, "relative") != NULL);
	CHECK(policy_add_mount(&p, "/a/../etc", MOUNT_RO, false, "--ro", &err) == -1);
	CHECK(policy_add_mount(&p, "~root/x", MOUNT_RO, false, "--ro", &err) == -1);
	CHECK(policy_add_mount(&p, "$FOO/x", MOUNT_RO, false, "--ro", &err) == -1);
	policy_free(&p);
}

static void test_mount_order(void)
{
	struct policy p;
	const char *err;

	fresh(&p);
	CHECK(policy_add_mount(&p, "/a/b/c", MOUNT_RO, false, "1", &err) == 0);
	CHECK(policy_add_mount(&p, "/x", MOUNT_RO, false, "2", &err) == 0);
	CHECK(policy_add_mount(&p, "/a", MOUNT_RW, false, "3", &err) == 0);
	/* parents before children */
	CHECK(!strcmp(p.mounts.v[0].path, "/a") && !strcmp(p.mounts.v[1].path, "/a/b/c"));
	/* the same path again replaces the rule */
	CHECK(policy_add_mount(&p, "/a", MOUNT_RO, false, "4", &err) == 0);
	CHECK(p.mounts.n == 3 && mount_of(&p, "/a")->mode == MOUNT_RO);
	CHECK(!strcmp(mount_of(&p, "/a")->origin, "4"));
	/* hiding a directory drops what was bound below it */
	CHECK(policy_add_mount(&p, "/a/b", MOUNT_HIDE, false, "5", &err) == 0);
	CHECK(!mount_of(&p, "/a/b/c") && mount_of(&p, "/a/b")->mode == MOUNT_HIDE);
	CHECK(p.mounts.n == 3);
	policy_free(&p);
}

static const char full[] = "; a full profile\n"
			   "[profile]\n"
			   "description = Everything at once\n"
			   "network = proxy\n"
			   "\n"
			   "[filesystem]\n"
			   "ro = /opt/tool\n"
			   "ro = ?~/.toolchain\n"
			   "rw = $WORKSPACE/../x\n";

static void test_parse(void)
{
	static const char good[] =
		"# comment\n"
		"[profile]\n"
		"description = test profile ; inline comment\n"
		"network = proxy\n"
		"[filesystem]\n"
		"ro = /opt/tool\n"
		"ro = ? ~/.toolchain\n"
		"overlay = ?~/.cache/x\n"
		"hide = ~/.toolchain/secret\n"
		"rw = $WORKSPACE/out\n"
		"[network]\n"
		"allow = registry.npmjs.org, *.example.com:8443\n"
		"allow = pypi.org\n"
		"deny = evil.example.com\n"
		"[env]\n"
		"pass = TERM, LANG\n"
		"set = NODE_ENV=production\n"
		"set = EMPTY=\n"
		"unset = LANG\n"
		"[secret NPM_TOKEN]\n"
		"hosts = registry.npmjs.org\n"
		"header = Authorization: Bearer {value}\n"
		"methods = get, PUT\n"
		"paths = /a/, /b\n"
		"query = yes\n"
		"[secret GH]\n"
		"source = file:~/.gh-token\n"
		"hosts = github.com\n"
		"hosts = api.github.com\n";
	struct policy p;
	char err[2048], want[400];

	fresh(&p);
	CHECK(text(&p, good, false, err, sizeof(err)) == 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	CHECK(p.net == NET_PROXY && !strcmp(p.net_origin, "t.ini:4"));
	CHECK(mount_of(&p, "/opt/tool") && !strcmp(mount_of(&p, "/opt/tool")->origin, "t.ini:6"));
	snprintf(want, sizeof(want), "%s/.toolchain", home);
	CHECK(mount_of(&p, want) && mount_of(&p, want)->optional);
	snprintf(want, sizeof(want), "%s/.toolchain/secret", home);
	CHECK(mount_of(&p, want) && mount_of(&p, want)->mode == MOUNT_HIDE);
	snprintf(want, sizeof(want), "%s/out", ws);
	CHECK(mount_of(&p, want) && mount_of(&p, want)->mode == MOUNT_RW);
	CHECK(p.hosts.n == 4 && p.hosts.v[1].port == 8443 && p.hosts.v[3].deny);
	CHECK(!strcmp(p.hosts.v[2].origin, "t.ini:13"));
	CHECK(p.env.n == 3); /* TERM, NODE_ENV, EMPTY (LANG unset) */
	CHECK(!strcmp(p.env.v[1].value, "production") && !strcmp(p.env.v[2].value, ""));
	CHECK(p.secrets.n == 2);
	if (p.secrets.n == 2) {
		struct secret_rule *s = &p.secrets.v[0], *g = &p.secrets.v[1];

		CHECK(!strcmp(s->name, "NPM_TOKEN") && s->source == SECRET_ENV);
		CHECK(!strcmp(s->source_arg, "NPM_TOKEN") && s->in_query);
		CHECK(!strcmp(s->header, "Authorization: Bearer {value}"));
		CHECK(s->methods.n == 2 && !strcmp(s->methods.v[0], "GET"));
		CHECK(s->paths.n == 2 && !strcmp(s->paths.v[1], "/b"));
		CHECK(!strcmp(s->origin, "t.ini:20"));
		snprintf(want, sizeof(want), "%s/.gh-token", home);
		CHECK(g->source == SECRET_FILE && !strcmp(g->source_arg, want));
		CHECK(g->hosts.n == 2);
	}
	/* a later profile rebinds a secret's hosts and keeps the rest */
	CHECK(text(&p, "[secret NPM_TOKEN]\nhosts = npm.example.com\n", false, err,
		   sizeof(err)) == 0);
	CHECK(p.secrets.v[0].hosts.n == 1 && p.secrets.v[0].header);
	/* drop = yes removes it */
	CHECK(text(&p, "[secret GH]\ndrop = yes\n", false, err, sizeof(err)) == 0);
	CHECK(p.secrets.n == 1);
	policy_free(&p);

	fresh(&p);
	CHECK(text(&p, "\xEF\xBB\xBF[profile]\r\nnetwork = proxy\r\n", false, err, sizeof(err)) ==
	      0);
	CHECK(p.net == NET_PROXY);
	policy_free(&p);
	(void)full;
}

static void test_errors(void)
{
	CHECK(has(err_of("[profile]\nnetwork = proxy\n[bogus]\n", false),
		  "t.ini:3: unknown section [bogus]"));
	CHECK(has(err_of("[profile]\ncolour = red\n", false),
		  "t.ini:2: unknown key 'colour' in [profile]"));
	CHECK(has(err_of("network = none\n", false), "t.ini:1: 'network' outside any section"));
	CHECK(has(err_of("[profile]\njust words\n", false), "t.ini:2: syntax error"));
	CHECK(has(err_of("[network]\nallow = a.com\n  b.com\n", false), "t.ini:3: indented line"));
	CHECK(has(err_of("[filesystem]\nro = relative/dir\n", false),
		  "t.ini:2: ro = relative/dir: relative path"));
	CHECK(has(err_of("[filesystem]\n\nrw = /a/../b\n", false), "t.ini:3:"));
	CHECK(has(err_of("[network]\nallow = ok.com, bad..com\n", false),
		  "t.ini:2: allow bad..com: malformed host name"));
	CHECK(has(err_of("[network]\ndeny = x.com:99999\n", false),
		  "t.ini:2: deny x.com:99999: bad port"));
	CHECK(has(err_of("[profile]\nnetwork = maybe\n", false),
		  "t.ini:2: network must be none or proxy"));
	CHECK(has(err_of("[secret X]\n[profile]\n", false), "t.ini:1: empty [secret X] section"));
	CHECK(has(err_of("[secret X]\nsource = env:X\n", false),
		  "t.ini:1: secret X is bound to no host"));
	CHECK(has(err_of("[secret X]\nhosts = a.com\nsource = cmd:pass x\noptional = yes\n", false),
		  "t.ini:1: secret X: optional needs"));
	CHECK(has(err_of("[secret X]\nhosts = a.com\nsource = magic:x\n", false),
		  "t.ini:3: source must be"));
	CHECK(has(err_of("[secret X]\nhosts = a.com\nheader = Bearer\n", false),
		  "t.ini:3: header must"));
	CHECK(has(err_of("[secret X]\nhosts = *\n", false), "t.ini:2: hosts *: a secret cannot"));
	CHECK(has(err_of("[secret 1X]\nhosts = a.com\n", false), "t.ini:1: bad secret name"));
	CHECK(has(err_of("[secret]\n", false), "t.ini:1: [secret] needs a name"));
	CHECK(has(err_of("[secret X]\nhosts = a.com\ndrop = yes\n", false),
		  "t.ini:3: drop = yes must be"));
	CHECK(has(err_of("[env]\nset = NOEQUALS\n", false), "t.ini:2: set needs NAME=VALUE"));
	CHECK(has(err_of("[env]\npass = A=B\n", false), "t.ini:2: pass A=B"));
	CHECK(
	    has(err_of("[profile]\ninherit = no-such-profile\n", false),
		"t.ini:2: inherit: no profile named 'no-such-profile' (available: agent, default"));
	CHECK(has(err_of("[profile]\ninherit = /no/such/file.ini\n", false),
		  "t.ini:2: inherit /no/such/file.ini: No such file"));
	CHECK(has(err_of("[profile]\ndescription =\n", false),
		  "t.ini:2: 'description' has no value"));
	CHECK(has(err_of("[profile\n", false), "t.ini:1: missing ']'"));
	char longline[400];
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	memcpy(longline, "[profile]\ndescription = ", 24);
	CHECK(has(err_of(longline, false), "t.ini:2: line too long"));
	/* an error leaves nothing of that file applied before it in the CLI: it exits */
}

static void test_untrusted(void)
{
	struct policy p;
	char err[2048], path[400];

	/* what a workspace may not do */
	CHECK(has(err_of("[network]\nallow = evil.com\n", true),
		  "ws.ini:2: 'allow = evil.com' would widen the jail: it allows a host"));
	CHECK(has(err_of("[network]\nallow = evil.com\n", true), "--trust-workspace"));
	CHECK(
	    has(err_of("[filesystem]\nrw = /home\n", true), "ws.ini:2: 'rw = /home' would widen"));
	CHECK(has(err_of("[filesystem]\nro = ~/.ssh\n", true),
		  "'ro = ~/.ssh' would widen the jail: it makes a path visible"));
	CHECK(has(err_of("[filesystem]\noverlay = /var\n", true), "would widen"));
	CHECK(has(err_of("[profile]\nnetwork = proxy\n", true), "it turns the network on"));
	CHECK(has(err_of("[profile]\ninherit = node\n", true), "it pulls in another profile"));
	CHECK(has(err_of("[env]\npass = AWS_SECRET_ACCESS_KEY\n", true), "passes a host variable"));
	CHECK(has(err_of("[secret STEAL]\nhosts = evil.com\n", true), "adds or changes a secret"));
	CHECK(has(err_of("[secret STEAL]\nsource = file:/etc/shadow\n", true), "adds or changes"));

	/* what it may do */
	fresh(&p);
	CHECK(text(&p, "[profile]\nnetwork = proxy\n[network]\nallow = a.com, b.com\n"
		       "[filesystem]\nrw = ~/.cache/tool\nro = /opt/sdk\nrw = ~/.claude\n"
		       "hide = ~/.claude/.credentials.json\n"
		       "[secret K]\nhosts = a.com\n[secret L]\nhosts = b.com\n",
		   false, err, sizeof(err)) == 0);
	CHECK(text(&p,
		   "[profile]\ndescription = tighten\nnetwork = proxy\n"
		   "[network]\ndeny = a.com\n"
		   "[filesystem]\nhide = /opt/sdk/bin\nro = ~/.cache/tool\noverlay = /opt/sdk/lib\n"
		   "ro = $WORKSPACE/.git\nhide = $WORKSPACE/.env\nhide = ~/.ssh\n"
		   "[env]\nset = CI=1\nunset = CI\n"
		   "[secret K]\ndrop = yes\n"
		   "[secret NOT_THERE]\ndrop = yes\n",
		   true, err, sizeof(err)) == 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	CHECK(policy_match_host(&p, "a.com", 443, 443)->deny);
	CHECK(!policy_match_host(&p, "b.com", 443, 443)->deny);
	CHECK(p.secrets.n == 1 && !strcmp(p.secrets.v[0].name, "L"));
	snprintf(path, sizeof(path), "%s/.cache/tool", home);
	CHECK(mount_of(&p, path) && mount_of(&p, path)->mode == MOUNT_RO);
	/* a hidden path cannot be made visible again, nor hidden files below it */
	CHECK(text(&p, "[filesystem]\nro = ~/.claude/.credentials.json\n", true, err,
		   sizeof(err)) == -1);
	CHECK(has(err, "it makes a hidden path visible"));
	CHECK(text(&p, "[filesystem]\nro = /opt/sdk/bin/tool\n", true, err, sizeof(err)) == -1);
	/* a link planted in the workspace cannot be bound through */
	snprintf(path, sizeof(path), "%s/escape", ws);
	CHECK(symlink("/etc", path) == 0);
	CHECK(text(&p, "[filesystem]\nro = $WORKSPACE/escape\n", true, err, sizeof(err)) == -1);
	CHECK(has(err, "it goes through a symbolic link"));
	CHECK(text(&p, "[filesystem]\nro = $WORKSPACE/escape/passwd\n", true, err, sizeof(err)) ==
	      -1);
	CHECK(text(&p, "[filesystem]\nhide = $WORKSPACE/escape\n", true, err, sizeof(err)) == 0);
	unlink(path);
	/* going offline is tightening; coming back is not */
	CHECK(text(&p, "[profile]\nnetwork = none\n", true, err, sizeof(err)) == 0);
	CHECK(p.net == NET_NONE);
	CHECK(text(&p, "[profile]\nnetwork = proxy\n", true, err, sizeof(err)) == -1);
	policy_free(&p);
}

static void test_layering(void)
{
	struct policy p;
	char err[2048], path[400], cfg[400];
	char *out;

	snprintf(path, sizeof(path), "%s/agentjail", xdg);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/agentjail/loop-a.ini", xdg);
	put(path, "[profile]\ninherit = loop-b\n");
	snprintf(path, sizeof(path), "%s/agentjail/loop-b.ini", xdg);
	put(path, "[profile]\ndescription = b\n\ninherit = loop-a\n");
	/* a user node.ini building on the built-in node.ini */
	snprintf(path, sizeof(path), "%s/agentjail/node.ini", xdg);
	put(path, "[profile]\ndescription = my node\ninherit = node, git\n[network]\n"
		  "allow = npm.internal.example\n");
	snprintf(path, sizeof(path), "%s/sys.ini", etc);
	put(path, "[profile]\ndescription = from etc\n[network]\nallow = sys.example\n");

	fresh(&p);
	CHECK(policy_load(&p, "loop-a", err, sizeof(err)) == -1);
	CHECK(has(err, "loop-b.ini:4: inherit cycle: "));
	CHECK(has(err, "loop-a.ini -> "));
	policy_free(&p);

	fresh(&p);
	CHECK(policy_load(&p, "node", err, sizeof(err)) == 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	CHECK(p.net == NET_PROXY);
	CHECK(policy_match_host(&p, "registry.npmjs.org", 443, 443) != NULL);
	CHECK(policy_match_host(&p, "github.com", 443, 443) != NULL);
	CHECK(policy_match_host(&p, "npm.internal.example", 443, 443) != NULL);
	CHECK(p.layers.n == 4); /* default, node (built-in), git, the user's node */
	out = explain(&p);
	CHECK(has(out, "built-in default.ini"));
	CHECK(has(out, "built-in node.ini"));
	CHECK(has(out, "agentjail/node.ini (user)"));
	CHECK(has(out, "npm.internal.example"));
	CHECK(has(out, "node.ini:"));
	free(out);
	policy_free(&p);

	fresh(&p);
	CHECK(policy_load(&p, "sys", err, sizeof(err)) == 0);
	CHECK(policy_match_host(&p, "sys.example", 443, 443) != NULL);
	policy_free(&p);

	fresh(&p);
	CHECK(policy_load(&p, "nonesuch", err, sizeof(err)) == -1);
	CHECK(has(err, "unknown profile 'nonesuch'; available: agent, default, git, go, loop-a, "
		       "loop-b, node, python, rust, sys"));
	policy_free(&p);

	fresh(&p);
	snprintf(path, sizeof(path), "%s/missing.ini", tmp);
	CHECK(policy_load(&p, path, err, sizeof(err)) == -1);
	CHECK(has(err, "missing.ini: cannot read profile: No such file"));
	policy_free(&p);

	/* the workspace profile: tighten-only, unless trusted */
	snprintf(path, sizeof(path), "%s/.agentjail.ini", ws);
	put(path, "[network]\ndeny = registry.npmjs.org\n");
	fresh(&p);
	CHECK(policy_load(&p, "node", err, sizeof(err)) == 0);
	CHECK(policy_match_host(&p, "registry.npmjs.org", 443, 443)->deny);
	out = explain(&p);
	CHECK(has(out, "(workspace, untrusted: tighten-only)"));
	CHECK(has(out, ".agentjail.ini:2"));
	free(out);
	policy_free(&p);

	put(path, "[network]\n# more\nallow = extra.example\n");
	fresh(&p);
	CHECK(policy_load(&p, "node", err, sizeof(err)) == -1);
	CHECK(has(err, "/.agentjail.ini:3: 'allow = extra.example' would widen the jail"));
	policy_free(&p);

	fresh(&p);
	p.trust_workspace = true;
	CHECK(policy_load(&p, "node", err, sizeof(err)) == 0);
	CHECK(policy_match_host(&p, "extra.example", 443, 443) != NULL);
	policy_free(&p);

	snprintf(cfg, sizeof(cfg), "%s/agentjail/config.ini", xdg);
	put(cfg, "# mine\n[config]\ntrust = /somewhere/else\ntrust = $WORKSPACE\n");
	fresh(&p);
	CHECK(policy_load(&p, "node", err, sizeof(err)) == -1);
	CHECK(has(err, "config.ini:4: trust: $WORKSPACE is not allowed"));
	policy_free(&p);
	{
		char c[800];

		snprintf(c, sizeof(c), "[config]\ntrust = /somewhere/else\ntrust = %s/\n", ws);
		put(cfg, c);
	}
	fresh(&p);
	CHECK(policy_load(&p, "node", err, sizeof(err)) == 0);
	CHECK(policy_match_host(&p, "extra.example", 443, 443) != NULL);
	out = explain(&p);
	CHECK(has(out, "config.ini:3)"));
	free(out);
	policy_free(&p);
	put(cfg, "[config]\nbogus = 1\n");
	fresh(&p);
	CHECK(policy_load(&p, NULL, err, sizeof(err)) == -1);
	CHECK(has(err, "config.ini:2: unknown key 'bogus' in [config]"));
	policy_free(&p);
	unlink(cfg);

	/* a symlinked workspace profile is refused */
	unlink(path);
	CHECK(symlink("/etc/passwd", path) == 0);
	fresh(&p);
	CHECK(policy_load(&p, NULL, err, sizeof(err)) == -1);
	CHECK(has(err, "is a symbolic link"));
	policy_free(&p);
	unlink(path);

	/* listing */
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		policy_list_profiles(f);
		fclose(f);
		CHECK(has(buf, "built-in (overridden)"));
		CHECK(has(buf, "my node"));
		CHECK(has(buf, "from etc"));
		CHECK(has(buf, "python       built-in"));
		free(buf);
	}
}

static void test_secrets_explain(void)
{
	struct policy p;
	char err[2048];
	const char *e;
	char *out;

	setenv("ANTHROPIC_API_KEY", "sk-ant-THE-REAL-VALUE-0123456789", 1);
	unsetenv("OPENAI_API_KEY");
	unsetenv("OPENROUTER_API_KEY");
	fresh(&p);
	CHECK(policy_load(&p, "agent", err, sizeof(err)) == 0);
	/* optional secrets whose source is absent are dropped */
	CHECK(p.secrets.n == 1 && !strcmp(p.secrets.v[0].name, "ANTHROPIC_API_KEY"));
	CHECK(policy_add_secret(&p, "GH_TOKEN@github.com", "--secret", &e) == 0);
	CHECK(policy_add_host(&p, "example.org:8080", true, "--deny", &e) == 0);
	CHECK(policy_add_env(&p, "FOO=bar", "--env", &e) == 0);
	CHECK(policy_add_mount(&p, "/opt/x", MOUNT_RO, true, "--ro", &e) == 0);
	out = explain(&p);
	CHECK(!strstr(out, "THE-REAL-VALUE"));
	CHECK(has(out, "secret             ANTHROPIC_API_KEY -> api.anthropic.com "
		       "source=env:ANTHROPIC_API_KEY"));
	CHECK(has(out, "GH_TOKEN -> github.com"));
	CHECK(has(out, "--secret"));
	CHECK(has(out, "deny               example.org:8080"));
	CHECK(has(out, "env       set      FOO=bar"));
	CHECK(has(out, "ro?      /opt/x (absent: skipped)"));
	CHECK(has(out, "hide?"));
	CHECK(has(out, "network   proxy"));
	CHECK(
	    has(out, "allow              api.anthropic.com                            agent.ini:"));
	free(out);
	policy_free(&p);
	unsetenv("ANTHROPIC_API_KEY");
}

static void test_builtins(void)
{
	static const char *const names[] = { "default", "node", "python", "rust",
					     "go",      "git",  "agent",  NULL };
	char err[2048];

	for (int i = 0; names[i]; i++) {
		struct policy p;

		fresh(&p);
		CHECK(policy_load(&p, names[i], err, sizeof(err)) == 0);
		if (err[0])
			fprintf(stderr, "  %s: %s\n", names[i], err);
		CHECK(!strcmp(names[i], "default") ? p.net == NET_NONE : p.net == NET_PROXY);
		policy_free(&p);
	}
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_policy.XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(home, sizeof(home), "%s/home", tmp);
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmp);
	snprintf(ws, sizeof(ws), "%s/ws", tmp);
	snprintf(etc, sizeof(etc), "%s/etc", tmp);
	if (mkdir(home, 0700) || mkdir(xdg, 0700) || mkdir(ws, 0700) || mkdir(etc, 0700)) {
		perror("mkdir");
		return 2;
	}
	setenv("HOME", home, 1);
	setenv("XDG_CONFIG_HOME", xdg, 1);
	setenv("AGENTJAIL_SYSCONFDIR", etc, 1);

	test_hosts();
	test_adders();
	test_mount_order();
	test_parse();
	test_errors();
	test_untrusted();
	test_builtins();
	test_layering();
	test_secrets_explain();

	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
