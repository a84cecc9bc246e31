/*
 * test_tls.c - the run CA, leaf minting and caching, SNI enforcement, ALPN, upstream
 * verification of tls.c, over socketpairs in one process. Prints "N passed, M failed"
 * and a few timings; exits 1 on a failure.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "policy.h"
#include "tls.h"
#include "tls_session.h"
#include "util.h"

#include "check.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static X509 *ca;

static bool is_p256(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	char grp[32];
	size_t gl;

	return k && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	       EVP_PKEY_get_group_name(k, grp, sizeof(grp), &gl) && !strcmp(grp, "prime256v1");
}

static void test_ca(void)
{
	size_t len = 0;
	const char *pem = tls_ca_pem(&len);
	char cn[128];
	int crit = -1;
	BASIC_CONSTRAINTS *bc;
	time_t week = time(NULL) + 8 * 86400;

	CHECK(pem && len == strlen(pem) && strstr(pem, "BEGIN CERTIFICATE"));
	ca = pem ? pem_cert(pem) : NULL;
	CHECK(ca != NULL);
	if (!ca)
		return;
	CHECK(is_p256(ca));
	CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) >
		  0 &&
	      !strncmp(cn, "agentjail run CA ", 17) && strlen(cn) == 17 + 12);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	CHECK(bc && bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	CHECK((X509_get_key_usage(ca) & KU_KEY_CERT_SIGN) != 0);
	CHECK(X509_check_ca(ca) >= 1);
	CHECK(X509_cmp_time(X509_get0_notAfter(ca), &week) < 0); /* short validity */
	CHECK(X509_cmp_time(X509_get0_notBefore(ca), NULL) < 0);
}

static int verify_leaf(X509 *leaf, const char *host, bool ip)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX_init(ctx, st, leaf, NULL);
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(ctx), host);
	else
		X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0);
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

static void test_leaves(void)
{
	char *pem = tls_leaf_pem("api.example.test");
	X509 *leaf = pem ? pem_cert(pem) : NULL;
	double t0;
	int n = 200;

	CHECK(leaf != NULL);
	if (!leaf || !ca)
		return;
	CHECK(is_p256(leaf));
	CHECK(verify_leaf(leaf, "api.example.test", false) == 1);
	CHECK(verify_leaf(leaf, "other.example.test", false) != 1);
	CHECK(X509_check_ca(leaf) == 0);
	X509_free(leaf);
	free(pem);

	pem = tls_leaf_pem("127.0.0.1");
	leaf = pem ? pem_cert(pem) : NULL;
	CHECK(leaf && verify_leaf(leaf, "127.0.0.1", true) == 1);
	X509_free(leaf);
	free(pem);

	CHECK(tls_leaf_pem("bad host,DNS:evil.test") == NULL); /* no config injection */

	t0 = now_ms();
	for (int i = 0; i < n; i++)
		free(tls_leaf_pem("mint.example.test"));
	printf("leaf minting (EC P-256 signature, no keygen): %.3f ms each\n", (now_ms() - t0) / n);
}

struct server_arg {
	int fd;
	const char *host;
	SSL *ssl;
	char why[256];
};

static void *server(void *a)
{
	struct server_arg *s = a;

	s->ssl = tls_accept_client(s->fd, s->host, s->why, sizeof(s->why));
	if (s->ssl) {
		char buf[8];
		int r = SSL_read(s->ssl, buf, sizeof(buf));

		if (r > 0)
			SSL_write(s->ssl, buf, r);
	}
	return NULL;
}

static SSL_CTX *trusting_client(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	X509_STORE_add_cert(SSL_CTX_get_cert_store(c), ca);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return c;
}

/* A client handshake to tls_accept_client(host) sending sni; 1 when it succeeded. */
static int handshake(const char *host, const char *sni, const char *verify_name, char *why,
		     const unsigned char **alpn, unsigned *alpnlen, double *ms)
{
	static const unsigned char protos[] = "\x02h2\x08http/1.1";
	SSL_CTX *c = trusting_client();
	struct server_arg s = {.host = host};
	pthread_t th;
	int sv[2], ok;
	SSL *ssl;
	double t0 = now_ms();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	s.fd = sv[0];
	pthread_create(&th, NULL, server, &s);
	ssl = SSL_new(c);
	SSL_set_fd(ssl, sv[1]);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set1_host(ssl, verify_name);
	SSL_set_alpn_protos(ssl, protos, sizeof(protos) - 1);
	ok = SSL_connect(ssl) == 1;
	if (ok) {
		char buf[8];

		ok = SSL_write(ssl, "ping", 4) == 4 && SSL_read(ssl, buf, sizeof(buf)) == 4;
		if (alpn) {
			static unsigned char sel[32];
			const unsigned char *p;

			SSL_get0_alpn_selected(ssl, &p, alpnlen);
			if (*alpnlen > sizeof(sel))
				*alpnlen = sizeof(sel);
			if (*alpnlen)
				memcpy(sel, p, *alpnlen);
			*alpn = sel; /* copied: ssl is freed below */
		}
	}
	if (ms)
		*ms = now_ms() - t0;
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(th, NULL);
	snprintf(why, 256, "%s", s.why);
	tls_close(s.ssl);
	SSL_free(ssl);
	SSL_CTX_free(c);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return ok && s.ssl;
}

static void test_handshakes(void)
{
	char why[256];
	const unsigned char *alpn = NULL;
	unsigned alen = 0;
	double first, cached = 0, t;

	if (!ca)
		return;
	CHECK(handshake("api.example.test", "api.example.test", "api.example.test", why, &alpn,
			&alen, &first) == 1);
	CHECK(alen == 8 && !memcmp(alpn, "http/1.1", 8)); /* never h2 */
	CHECK(handshake("API.Example.Test", "api.example.test.", "api.example.test", why, NULL,
			NULL, NULL) == 1);
	for (int i = 0; i < 20; i++) {
		CHECK(handshake("api.example.test", "api.example.test", "api.example.test", why,
				NULL, NULL, &t) == 1);
		cached += t;
	}
	printf("in-process handshake: first %.2f ms, cached leaf %.2f ms\n", first, cached / 20);

	/* SNI naming another host than the CONNECT target: refused (no domain fronting) */
	CHECK(handshake("api.example.test", "evil.test", "evil.test", why, NULL, NULL, NULL) == 0);
	CHECK(strstr(why, "SNI") && strstr(why, "evil.test"));
	/* no SNI for a name target: refused */
	CHECK(handshake("api.example.test", NULL, "api.example.test", why, NULL, NULL, NULL) == 0);
	CHECK(strstr(why, "SNI") != NULL);
}

/* The upstream side: our own interception server is not trusted by the system store. */
static void *up_server(void *a)
{
	struct server_arg *s = a;

	s->ssl = tls_accept_client(s->fd, s->host, s->why, sizeof(s->why));
	return NULL;
}

static void test_upstream_untrusted(void)
{
	struct server_arg s = {.host = "api.example.test"};
	pthread_t th;
	char why[256] = "";
	int sv[2];
	SSL *ssl;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	s.fd = sv[0];
	pthread_create(&th, NULL, up_server, &s);
	ssl = tls_connect_upstream(sv[1], "api.example.test", why, sizeof(why));
	CHECK(ssl == NULL);
	CHECK(strstr(why, "certificate") && strstr(why, "api.example.test"));
	printf("untrusted upstream: %s\n", why);
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(th, NULL);
	tls_close(s.ssl);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	struct policy p;
	struct secret_rule *s;

	signal(SIGPIPE, SIG_IGN); /* as in the proxy */
	memset(&p, 0, sizeof(p));
	CHECK(tls_init(&p) == 0);
	CHECK(tls_ca_pem(NULL) == NULL); /* nothing bound: no CA */
	s = VEC_PUSH(p.secrets);
	s->name = "T";
	*VEC_PUSH(s->hosts) = "api.example.test";
	CHECK(tls_init(&p) == 0);
	test_ca();
	test_leaves();
	test_handshakes();
	test_upstream_untrusted();
	X509_free(ca);
	printf("test_tls: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
