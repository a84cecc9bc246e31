/*
 * fuzz_profile.c - the profile parser (policy.c through policy_load_text): INI text and
 * every value syntax (paths, modes, host patterns with ports, secrets with sources,
 * headers, methods, env specs, inherit).
 *
 * The first byte says whether the text is a trusted profile or an untrusted workspace
 * profile. Checks: no memory error, no exit; an error message is NUL-ended and names
 * the file; policy_free leaves nothing behind (LeakSanitizer); and an untrusted profile
 * loaded on an empty policy only tightens: it adds no allowed host, no secret, no
 * read-write or overlay mount, no host map, and does not switch the network on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* inherit = NAME may look for user profiles: point it at an empty directory. */
	setenv("XDG_CONFIG_HOME", "/nonexistent/agentjail-fuzz", 1);
	setenv("HOME", "/nonexistent/agentjail-fuzz", 1);
	return 0;
}

static void check_tighten_only(const struct policy *p, enum net_mode net0)
{
	for (size_t i = 0; i < p->hosts.n; i++)
		FUZZ_CHECK(p->hosts.v[i].deny);
	FUZZ_CHECK(p->secrets.n == 0);
	FUZZ_CHECK(p->host_maps.n == 0);
	for (size_t i = 0; i < p->mounts.n; i++)
		FUZZ_CHECK(p->mounts.v[i].mode == MOUNT_RO || p->mounts.v[i].mode == MOUNT_HIDE);
	FUZZ_CHECK(!(net0 == NET_NONE && p->net != NET_NONE));
	FUZZ_CHECK(!p->trust_workspace);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	bool untrusted = fuzz_byte(&in) & 1;
	char *text = malloc(in.n + 1), err[512];
	struct policy p;
	int rc;

	if (!text)
		abort();
	memcpy(text, in.p, in.n);
	text[in.n] = '\0';
	policy_init(&p);
	p.workspace = (char *)"/tmp/agentjail-fuzz-ws";
	p.net = NET_NONE;
	err[0] = '\0';
	rc = policy_load_text(&p, "fuzz.ini", text, in.n, untrusted, err, sizeof(err));
	if (rc < 0) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(err[0] != '\0');
	} else {
		FUZZ_CHECK(rc == 0);
		for (size_t i = 0; i < p.hosts.n; i++)
			FUZZ_CHECK(p.hosts.v[i].pattern && p.hosts.v[i].pattern[0]);
		for (size_t i = 0; i < p.mounts.n; i++)
			FUZZ_CHECK(p.mounts.v[i].path && p.mounts.v[i].path[0] == '/');
		if (untrusted)
			check_tighten_only(&p, NET_NONE);
	}
	policy_free(&p);
	free(text);
	return 0;
}
