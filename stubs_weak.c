/*
 * stubs_weak.c - weak stand-ins for the secrets/TLS/interception functions the proxy
 * calls, so that the binary links while secrets.c, tls.c and intercept.c are being
 * written. Their real (strong) definitions override these; this file goes away then.
 */
#include <stddef.h>

#include "intercept.h"
#include "secrets.h"
#include "tls.h"
#include "util.h"

__attribute__((weak)) int secrets_load(struct policy *p)
{
	if (p->secrets.n) {
		msg("secrets are not supported by this build yet");
		return -1;
	}
	return 0;
}

__attribute__((weak)) bool secrets_bound(const struct policy *p, const char *host)
{
	return false;
}

__attribute__((weak)) const char *secrets_exfil_scan(const struct policy *p, const char *host,
						     const char *buf, size_t len)
{
	return NULL;
}

__attribute__((weak)) void secrets_wipe(void)
{
}

__attribute__((weak)) int tls_init(const struct policy *p)
{
	return 0;
}

__attribute__((weak)) const char *tls_ca_pem(size_t *len)
{
	*len = 0;
	return NULL;
}

__attribute__((weak)) void intercept_session(int client_fd, const struct intercept_target *t,
					     const struct policy *p)
{
}
