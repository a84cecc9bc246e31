/*
 * tls.c - the per-run CA, leaf minting for interception, upstream TLS with verification.
 *
 * The run CA and one leaf key are EC P-256 keys generated once at start, in the proxy's
 * memory only. A leaf is a certificate for that shared leaf key with the host as its only
 * subjectAltName, signed on first use of a host and cached with its server SSL_CTX, so no
 * key is ever generated on the request path and a cached host costs only the handshake.
 */
#include "tls.h"
#include "tls_session.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "secrets.h"
#include "util.h"

#define CA_DAYS	   7 /* the run CA and its leaves expire a week after the start */
#define HOST_MAX   256
#define SESS_CACHE 64

static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca_cert;
static char *ca_pem;
static size_t ca_pem_len;
static SSL_CTX *client_ctx;
static int host_idx = -1; /* SSL ex_data: the expected host (const char *) */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leaf {
	char host[HOST_MAX];
	SSL_CTX *ctx;
	uint64_t used;
} leaves[TLS_LEAF_CACHE];
static uint64_t leaf_clock;

static struct upsess {
	char host[HOST_MAX];
	SSL_SESSION *sess;
} sessions[SESS_CACHE];
static size_t sess_next;

/* The most useful line of OpenSSL's error queue, which is then emptied. */
static const char *ssl_reason(void)
{
	static __thread char buf[160];
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, sizeof(buf), "%s", r ? r : "unknown error");
	ERR_clear_error();
	return buf;
}

static bool is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Hosts reach the X.509 config syntax below: allow only what a DNS name or IP holds. */
static bool host_ok(const char *host)
{
	size_t n = strlen(host);

	if (!n || n >= HOST_MAX)
		return false;
	for (const char *c = host; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_' || *c == ':'))
			return false;
	return true;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int set_serial(X509 *cert)
{
	unsigned char b[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f; /* positive */
	b[0] |= 0x01; /* and never zero-led to a shorter encoding */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (!bn)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* A certificate skeleton: v3, random serial, validity from an hour ago to the CA's end. */
static X509 *cert_new(EVP_PKEY *pub)
{
	X509 *c = X509_new();

	if (!c || !X509_set_version(c, 2) || set_serial(c) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
	    !(ca_cert ? X509_set1_notAfter(c, X509_get0_notAfter(ca_cert))
		      : X509_gmtime_adj(X509_getm_notAfter(c), 86400L * CA_DAYS) != NULL) ||
	    !X509_set_pubkey(c, pub)) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static int make_ca(void)
{
	unsigned char r[6];
	char cn[64];
	X509_NAME *name;
	BIO *mem;
	char *data;
	long n;

	ca_key = EVP_EC_gen("P-256");
	leaf_key = EVP_EC_gen("P-256");
	if (!ca_key || !leaf_key || RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	snprintf(cn, sizeof(cn), "agentjail run CA %02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
		 r[3], r[4], r[5]);
	ca_cert = cert_new(ca_key);
	if (!ca_cert)
		return -1;
	name = X509_get_subject_name(ca_cert);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"agentjail",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0) ||
	    !X509_set_issuer_name(ca_cert, name))
		return -1;
	if (add_ext(ca_cert, ca_cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(ca_cert, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(ca_cert, ca_cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(ca_cert, ca_cert, NID_authority_key_identifier, "keyid:always") < 0)
		return -1;
	if (!X509_sign(ca_cert, ca_key, EVP_sha256()))
		return -1;
	mem = BIO_new(BIO_s_mem());
	if (!mem || !PEM_write_bio_X509(mem, ca_cert)) {
		BIO_free(mem);
		return -1;
	}
	n = BIO_get_mem_data(mem, &data);
	ca_pem = xstrndup(data, (size_t)n);
	ca_pem_len = (size_t)n;
	BIO_free(mem);
	return 0;
}

static X509 *mint_leaf(const char *host)
{
	char san[HOST_MAX + 8];
	X509 *c;
	X509_NAME *name;

	if (!host_ok(host))
		return NULL;
	c = cert_new(leaf_key);
	if (!c)
		return NULL;
	name = X509_get_subject_name(c);
	/* CN is at most 64 characters; the SAN is what clients check. */
	if (strlen(host) <= 64 &&
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1,
					-1, 0))
		goto fail;
	snprintf(san, sizeof(san), "%s:%s", is_ip(host) ? "IP" : "DNS", host);
	if (!X509_set_issuer_name(c, X509_get_subject_name(ca_cert)) ||
	    add_ext(c, ca_cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(c, ca_cert, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(c, ca_cert, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(c, ca_cert, NID_subject_alt_name, san) < 0 ||
	    add_ext(c, ca_cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(c, ca_cert, NID_authority_key_identifier, "keyid") < 0 ||
	    !X509_sign(c, ca_key, EVP_sha256()))
		goto fail;
	return c;
fail:
	X509_free(c);
	return NULL;
}

/* Refuse the handshake when the SNI is not the CONNECT target. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	const char *want = SSL_get_ex_data(ssl, host_idx);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)arg;
	if (!want)
		goto refuse;
	if (!sni) {
		if (is_ip(want))
			return SSL_TLSEXT_ERR_OK; /* no SNI for IP literals (RFC 6066) */
		goto refuse;
	}
	{
		size_t n = strlen(sni);

		if (n && sni[n - 1] == '.')
			n--;
		if (n == strlen(want) && !strncasecmp(sni, want, n))
			return SSL_TLSEXT_ERR_OK;
	}
refuse:
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* We speak HTTP/1.1 only: pick it when offered, otherwise no ALPN at all. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned i = 0; i < inlen;) {
		unsigned l = in[i];

		if (i + 1 + l > inlen)
			break;
		if (l == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/*
 * Read ahead: one read() takes in whatever the socket holds, several records at a time,
 * instead of a 5-byte header read and a body read per record (bulk relays are syscall-bound).
 */
static void set_buffers(SSL_CTX *ctx)
{
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
	/*
	 * TLS 1.3 suites: AES-128-GCM first (OpenSSL's default order puts AES-256 first).
	 * Every intercepted byte is sealed and opened twice, and AES-128 does 10 rounds to
	 * AES-256's 14 at the same 128-bit security level against anything but a quantum
	 * adversary; it is what most browsers and servers pick first. Both suites stay.
	 */
	(void)SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
					    "TLS_CHACHA20_POLY1305_SHA256");
}

static SSL_CTX *server_ctx_for(const char *host)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509 *leaf;

	if (!ctx)
		return NULL;
	leaf = mint_leaf(host);
	if (!leaf || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, leaf_key) != 1) {
		X509_free(leaf);
		SSL_CTX_free(ctx);
		return NULL;
	}
	X509_free(leaf);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* One ticket is enough for a client that resumes; the default two cost a write. */
	SSL_CTX_set_num_tickets(ctx, 1);
	set_buffers(ctx);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	return ctx;
}

/* The cached server context for host (a reference the caller frees), minting on a miss. */
static SSL_CTX *leaf_ctx(const char *host)
{
	struct leaf *slot = NULL;
	SSL_CTX *ctx = NULL;

	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < TLS_LEAF_CACHE; i++) {
		if (leaves[i].ctx && !strcasecmp(leaves[i].host, host)) {
			leaves[i].used = ++leaf_clock;
			ctx = leaves[i].ctx;
			SSL_CTX_up_ref(ctx);
			break;
		}
		/* victim: the first free slot, else the least recently used */
		if (!slot || (slot->ctx && (!leaves[i].ctx || leaves[i].used < slot->used)))
			slot = &leaves[i];
	}
	if (!ctx) {
		/* Minting is one ECDSA signature: cheap enough to do under the lock. */
		ctx = server_ctx_for(host);
		if (ctx) {
			SSL_CTX_free(slot->ctx); /* the LRU entry; live sessions hold their ref */
			snprintf(slot->host, sizeof(slot->host), "%s", host);
			slot->ctx = ctx;
			slot->used = ++leaf_clock;
			SSL_CTX_up_ref(ctx);
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return ctx;
}

/* Client sessions per upstream host, for resumption. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	const char *host = SSL_get_ex_data(ssl, host_idx);
	struct upsess *slot = NULL;

	if (!host)
		return 0;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < SESS_CACHE; i++)
		if (sessions[i].sess && !strcasecmp(sessions[i].host, host))
			slot = &sessions[i];
	if (!slot)
		slot = &sessions[sess_next++ % SESS_CACHE];
	SSL_SESSION_free(slot->sess);
	snprintf(slot->host, sizeof(slot->host), "%s", host);
	slot->sess = sess; /* returning 1: we keep the reference */
	pthread_mutex_unlock(&cache_lock);
	return 1;
}

static SSL_SESSION *session_for(const char *host)
{
	SSL_SESSION *s = NULL;

	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < SESS_CACHE; i++)
		if (sessions[i].sess && !strcasecmp(sessions[i].host, host)) {
			s = sessions[i].sess;
			if (!SSL_SESSION_is_resumable(s)) {
				s = NULL;
				break;
			}
			SSL_SESSION_up_ref(s);
			break;
		}
	pthread_mutex_unlock(&cache_lock);
	return s;
}

static int make_client_ctx(const struct policy *p)
{
	static const unsigned char alpn[] = "\x08http/1.1";

	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!client_ctx) {
		msg("TLS: cannot create the upstream context: %s", ssl_reason());
		return -1;
	}
	SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(client_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	set_buffers(client_ctx);
	if (SSL_CTX_set_default_verify_paths(client_ctx) != 1) {
		msg("TLS: cannot load the system trust store: %s", ssl_reason());
		return -1;
	}
	if (p->upstream_ca &&
	    SSL_CTX_load_verify_locations(client_ctx, p->upstream_ca, NULL) != 1) {
		msg("--upstream-ca %s: %s", p->upstream_ca, ssl_reason());
		return -1;
	}
	if (SSL_CTX_set_alpn_protos(client_ctx, alpn, sizeof(alpn) - 1) != 0) {
		msg("TLS: cannot set ALPN");
		return -1;
	}
	SSL_CTX_set_session_cache_mode(client_ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(client_ctx, new_session_cb);
	return 0;
}

int tls_init(const struct policy *p)
{
	bool any = false;

	for (size_t i = 0; i < p->secrets.n; i++)
		any |= p->secrets.v[i].hosts.n > 0;
	if (!any && !p->upstream_ca)
		return 0;
	if (host_idx < 0)
		host_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (host_idx < 0) {
		msg("TLS: cannot allocate ex_data");
		return -1;
	}
	if (any && !ca_cert && make_ca() < 0) {
		msg("TLS: cannot create the run CA: %s", ssl_reason());
		return -1;
	}
	if (!client_ctx && make_client_ctx(p) < 0)
		return -1;
	return 0;
}

const char *tls_ca_pem(size_t *len)
{
	if (len)
		*len = ca_pem_len;
	return ca_pem;
}

char *tls_leaf_pem(const char *host)
{
	X509 *c = ca_cert ? mint_leaf(host) : NULL;
	BIO *mem;
	char *data, *out = NULL;
	long n;

	if (!c)
		return NULL;
	mem = BIO_new(BIO_s_mem());
	if (mem && PEM_write_bio_X509(mem, c)) {
		n = BIO_get_mem_data(mem, &data);
		out = xstrndup(data, (size_t)n);
	}
	BIO_free(mem);
	X509_free(c);
	return out;
}

SSL *tls_accept_client(int fd, const char *host, char *why, size_t whysz)
{
	SSL_CTX *ctx;
	SSL *ssl;
	int r;

	if (!ca_cert) {
		snprintf(why, whysz, "no run CA");
		return NULL;
	}
	ctx = leaf_ctx(host);
	if (!ctx) {
		snprintf(why, whysz, "cannot mint a certificate for %s: %s", host, ssl_reason());
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_ex_data(ssl, host_idx, (void *)host)) {
		snprintf(why, whysz, "TLS setup: %s", ssl_reason());
		SSL_free(ssl);
		return NULL;
	}
	ERR_clear_error();
	r = SSL_accept(ssl);
	if (r != 1) {
		const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		int err = SSL_get_error(ssl, r);

		if (err == SSL_ERROR_SSL && ERR_peek_last_error() &&
		    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_CALLBACK_FAILED)
			snprintf(why, whysz, "TLS SNI %s%s%s does not match the CONNECT target %s",
				 sni ? "\"" : "", sni ? sni : "(none)", sni ? "\"" : "", host);
		else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
			snprintf(why, whysz, "client closed during the TLS handshake");
		else
			snprintf(why, whysz, "TLS handshake with the client failed: %s",
				 ssl_reason());
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

SSL *tls_connect_upstream(int fd, const char *host, char *why, size_t whysz)
{
	SSL_SESSION *sess;
	SSL *ssl;
	int r;

	if (!client_ctx) {
		snprintf(why, whysz, "no upstream TLS context");
		return NULL;
	}
	ssl = SSL_new(client_ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || !SSL_set_ex_data(ssl, host_idx, (void *)host))
		goto setup;
	if (is_ip(host)) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host))
			goto setup;
	} else if (!SSL_set_tlsext_host_name(ssl, host) || !SSL_set1_host(ssl, host)) {
		goto setup;
	}
	sess = session_for(host);
	if (sess) {
		SSL_set_session(ssl, sess);
		SSL_SESSION_free(sess);
	}
	ERR_clear_error();
	r = SSL_connect(ssl);
	if (r != 1) {
		long v = SSL_get_verify_result(ssl);
		int err = SSL_get_error(ssl, r);

		if (v != X509_V_OK)
			snprintf(why, whysz, "upstream certificate of %s rejected: %s", host,
				 X509_verify_cert_error_string(v));
		else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
			snprintf(why, whysz, "upstream %s closed during the TLS handshake", host);
		else
			snprintf(why, whysz, "TLS handshake with upstream %s failed: %s", host,
				 ssl_reason());
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
setup:
	snprintf(why, whysz, "TLS setup for %s: %s", host, ssl_reason());
	SSL_free(ssl);
	return NULL;
}

void tls_close(SSL *ssl)
{
	if (!ssl)
		return;
	/* One close_notify, not waiting for the peer's: the socket closes next. */
	if (SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
}

bool tls_enabled(void)
{
	return client_ctx != NULL;
}
