/*
 * ossl.c - OpenSSL, loaded the first time the proxy needs it.
 *
 * Only the proxy speaks TLS; the jail and the launcher never do. Linked at build time,
 * libssl and libcrypto made every start pay for mapping and relocating them (about 20,000
 * relocations, ~1 ms of a 7 ms `agentjail --net none -- true`; LD_DEBUG=statistics and
 * hyperfine of `agentjail --version` against /bin/true). Here each OpenSSL function the
 * program calls is a forwarder to a pointer that ossl_load() fills from libssl.so.3 (which
 * brings libcrypto.so.3 with it). The library stays the system's shared one, so its security
 * updates reach the proxy without a rebuild.
 *
 * The forwarders are declared by OpenSSL's own headers, so the compiler checks each
 * signature here against the headers being built against; the soname pins the ABI (3.x).
 * They are hidden: the executable exports none of them, so the library's own calls resolve
 * inside the library (dlopen with RTLD_LOCAL) and a dlsym() on its handle can never find
 * a forwarder of ours.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"

#define OSSL_SONAME "libssl.so.3"

/*
 * The table: X(return type, name, (parameters), (arguments)); V(...) for functions that
 * return nothing. Keep it sorted; add a line when the code calls a new OpenSSL function
 * (the link fails until then).
 */
#define OSSL_FUNCS                                                                                 \
	X(long, BIO_ctrl, (BIO * b, int cmd, long l, void *p), (b, cmd, l, p))                     \
	X(BIO_callback_fn_ex, BIO_get_callback_ex, (const BIO *b), (b))                            \
	X(char *, BIO_get_callback_arg, (const BIO *b), (b))                                       \
	X(int, BIO_free, (BIO * b), (b))                                                           \
	X(BIO *, BIO_new, (const BIO_METHOD *m), (m))                                              \
	X(const BIO_METHOD *, BIO_s_mem, (void), ())                                               \
	V(BIO_set_callback_arg, (BIO * b, char *arg), (b, arg))                                    \
	V(BIO_set_callback_ex, (BIO * b, BIO_callback_fn_ex cb), (b, cb))                          \
	X(BIGNUM *, BN_bin2bn, (const unsigned char *s, int len, BIGNUM *r), (s, len, r))          \
	V(BN_free, (BIGNUM * a), (a))                                                              \
	X(ASN1_INTEGER *, BN_to_ASN1_INTEGER, (const BIGNUM *bn, ASN1_INTEGER *ai), (bn, ai))      \
	X(int, CRYPTO_get_ex_new_index,                                                            \
	  (int ci, long argl, void *argp, CRYPTO_EX_new *nf, CRYPTO_EX_dup *df,                    \
	   CRYPTO_EX_free *ff),                                                                    \
	  (ci, argl, argp, nf, df, ff))                                                            \
	V(ERR_clear_error, (void), ())                                                             \
	X(unsigned long, ERR_peek_last_error, (void), ())                                          \
	X(const char *, ERR_reason_error_string, (unsigned long e), (e))                           \
	X(const EVP_MD *, EVP_sha256, (void), ())                                                  \
	X(const char *, OpenSSL_version, (int t), (t))                                             \
	X(int, PEM_write_bio_X509, (BIO * b, const X509 *x), (b, x))                               \
	X(int, RAND_bytes, (unsigned char *b, int n), (b, n))                                      \
	X(long, SSL_CTX_callback_ctrl, (SSL_CTX * c, int cmd, void (*f)(void)), (c, cmd, f))       \
	X(long, SSL_CTX_ctrl, (SSL_CTX * c, int cmd, long l, void *p), (c, cmd, l, p))             \
	V(SSL_CTX_free, (SSL_CTX * c), (c))                                                        \
	X(int, SSL_CTX_load_verify_locations, (SSL_CTX * c, const char *f, const char *d),         \
	  (c, f, d))                                                                               \
	X(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m), (m))                                      \
	X(int, SSL_CTX_set_ciphersuites, (SSL_CTX * c, const char *s), (c, s))                     \
	V(SSL_CTX_sess_set_new_cb, (SSL_CTX * c, int (*cb)(struct ssl_st *, SSL_SESSION *)),       \
	  (c, cb))                                                                                 \
	X(int, SSL_CTX_set_alpn_protos, (SSL_CTX * c, const unsigned char *p, unsigned int n),     \
	  (c, p, n))                                                                               \
	V(SSL_CTX_set_alpn_select_cb, (SSL_CTX * c, SSL_CTX_alpn_select_cb_func cb, void *a),      \
	  (c, cb, a))                                                                              \
	V(SSL_CTX_set_default_read_buffer_len, (SSL_CTX * c, size_t n), (c, n))                    \
	X(int, SSL_CTX_set_default_verify_paths, (SSL_CTX * c), (c))                               \
	X(int, SSL_CTX_set_num_tickets, (SSL_CTX * c, size_t n), (c, n))                           \
	X(uint64_t, SSL_CTX_set_options, (SSL_CTX * c, uint64_t o), (c, o))                        \
	V(SSL_CTX_set_verify, (SSL_CTX * c, int mode, SSL_verify_cb cb), (c, mode, cb))            \
	X(int, SSL_CTX_up_ref, (SSL_CTX * c), (c))                                                 \
	X(int, SSL_CTX_use_PrivateKey, (SSL_CTX * c, EVP_PKEY * k), (c, k))                        \
	X(int, SSL_CTX_use_certificate, (SSL_CTX * c, X509 * x), (c, x))                           \
	V(SSL_SESSION_free, (SSL_SESSION * s), (s))                                                \
	X(int, SSL_SESSION_is_resumable, (const SSL_SESSION *s), (s))                              \
	X(int, SSL_SESSION_up_ref, (SSL_SESSION * s), (s))                                         \
	X(int, SSL_accept, (SSL * s), (s))                                                         \
	X(int, SSL_connect, (SSL * s), (s))                                                        \
	X(long, SSL_ctrl, (SSL * s, int cmd, long l, void *p), (s, cmd, l, p))                     \
	V(SSL_free, (SSL * s), (s))                                                                \
	X(X509_VERIFY_PARAM *, SSL_get0_param, (SSL * s), (s))                                     \
	X(int, SSL_get_error, (const SSL *s, int r), (s, r))                                       \
	X(void *, SSL_get_ex_data, (const SSL *s, int i), (s, i))                                  \
	X(const char *, SSL_get_servername, (const SSL *s, const int t), (s, t))                   \
	X(BIO *, SSL_get_rbio, (const SSL *s), (s))                                                \
	X(long, SSL_get_verify_result, (const SSL *s), (s))                                        \
	X(int, SSL_has_pending, (const SSL *s), (s))                                               \
	X(int, SSL_is_init_finished, (const SSL *s), (s))                                          \
	X(SSL *, SSL_new, (SSL_CTX * c), (c))                                                      \
	X(int, SSL_pending, (const SSL *s), (s))                                                   \
	X(int, SSL_read, (SSL * s, void *b, int n), (s, b, n))                                     \
	X(int, SSL_set1_host, (SSL * s, const char *h), (s, h))                                    \
	X(int, SSL_set_ex_data, (SSL * s, int i, void *d), (s, i, d))                              \
	X(int, SSL_set_fd, (SSL * s, int fd), (s, fd))                                             \
	X(int, SSL_set_session, (SSL * s, SSL_SESSION * ss), (s, ss))                              \
	X(int, SSL_shutdown, (SSL * s), (s))                                                       \
	X(int, SSL_write, (SSL * s, const void *b, int n), (s, b, n))                              \
	X(const SSL_METHOD *, TLS_client_method, (void), ())                                       \
	X(const SSL_METHOD *, TLS_server_method, (void), ())                                       \
	X(X509_EXTENSION *, X509V3_EXT_conf_nid,                                                   \
	  (LHASH_OF(CONF_VALUE) * conf, X509V3_CTX * c, int nid, const char *v),                   \
	  (conf, c, nid, v))                                                                       \
	V(X509V3_set_ctx,                                                                          \
	  (X509V3_CTX * c, X509 * i, X509 * s, X509_REQ * r, X509_CRL * crl, int f),               \
	  (c, i, s, r, crl, f))                                                                    \
	V(X509_EXTENSION_free, (X509_EXTENSION * e), (e))                                          \
	X(int, X509_NAME_add_entry_by_txt,                                                         \
	  (X509_NAME * n, const char *f, int t, const unsigned char *b, int len, int loc,          \
	   int set),                                                                               \
	  (n, f, t, b, len, loc, set))                                                             \
	X(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM * p, const char *ip), (p, ip))    \
	X(int, X509_add_ext, (X509 * x, X509_EXTENSION * e, int loc), (x, e, loc))                 \
	V(X509_free, (X509 * x), (x))                                                              \
	X(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x))                             \
	X(const char *, X509_get_default_cert_dir, (void), ())                                     \
	X(const char *, X509_get_default_cert_file, (void), ())                                    \
	X(ASN1_INTEGER *, X509_get_serialNumber, (X509 * x), (x))                                  \
	X(X509_NAME *, X509_get_subject_name, (const X509 *x), (x))                                \
	X(ASN1_TIME *, X509_getm_notAfter, (const X509 *x), (x))                                   \
	X(ASN1_TIME *, X509_getm_notBefore, (const X509 *x), (x))                                  \
	X(ASN1_TIME *, X509_gmtime_adj, (ASN1_TIME * s, long adj), (s, adj))                       \
	X(X509 *, X509_new, (void), ())                                                            \
	X(int, X509_set1_notAfter, (X509 * x, const ASN1_TIME *t), (x, t))                         \
	X(int, X509_set_issuer_name, (X509 * x, const X509_NAME *n), (x, n))                       \
	X(int, X509_set_pubkey, (X509 * x, EVP_PKEY * k), (x, k))                                  \
	X(int, X509_set_version, (X509 * x, long v), (x, v))                                       \
	X(int, X509_sign, (X509 * x, EVP_PKEY * k, const EVP_MD *md), (x, k, md))                  \
	X(const char *, X509_verify_cert_error_string, (long n), (n))

/* One pointer per function, typed from the header's own declaration. */
#define X(ret, name, params, args) static __typeof__(name) *p_##name;
#define V(name, params, args)	   static __typeof__(name) *p_##name;
OSSL_FUNCS
static __typeof__(EVP_PKEY_Q_keygen) *p_EVP_PKEY_Q_keygen;
#undef X
#undef V

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static int ossl_ready;

static void *ossl_sym(void *lib, const char *name)
{
	void *f = dlsym(lib, name);

	if (!f)
		die("cannot load OpenSSL: %s has no %s", OSSL_SONAME, name);
	return f;
}

/*
 * Runs once. A missing or broken library ends the process that needed it (the proxy): the
 * launcher sees its proxy fail and exits 125; there is no fallback without TLS.
 */
static void ossl_load_once(void)
{
	void *lib = dlopen(OSSL_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!lib)
		die("cannot load OpenSSL (%s): %s", OSSL_SONAME, dlerror());
#define X(ret, name, params, args) p_##name = (__typeof__(p_##name))ossl_sym(lib, #name);
#define V(name, params, args)	   p_##name = (__typeof__(p_##name))ossl_sym(lib, #name);
	OSSL_FUNCS
#undef X
#undef V
	p_EVP_PKEY_Q_keygen = (__typeof__(p_EVP_PKEY_Q_keygen))ossl_sym(lib, "EVP_PKEY_Q_keygen");
	__atomic_store_n(&ossl_ready, 1, __ATOMIC_RELEASE);
}

void ossl_load(void)
{
	if (!__atomic_load_n(&ossl_ready, __ATOMIC_ACQUIRE))
		(void)pthread_once(&ossl_once, ossl_load_once);
}

#pragma GCC visibility push(hidden)

#define X(ret, name, params, args)                                                                 \
	ret name params                                                                            \
	{                                                                                          \
		ossl_load();                                                                       \
		return p_##name args;                                                              \
	}
#define V(name, params, args)                                                                      \
	void name params                                                                           \
	{                                                                                          \
		ossl_load();                                                                       \
		p_##name args;                                                                     \
	}
OSSL_FUNCS
#undef X
#undef V

/*
 * The one variadic function: its arguments depend on the key type. Only EC keys are made
 * here (EVP_EC_gen(curve) passes the curve name); any other type is refused.
 */
EVP_PKEY *EVP_PKEY_Q_keygen(OSSL_LIB_CTX *libctx, const char *propq, const char *type, ...)
{
	const char *curve;
	va_list ap;

	ossl_load();
	if (strcmp(type, "EC"))
		return NULL;
	va_start(ap, type);
	curve = va_arg(ap, char *);
	va_end(ap);
	return p_EVP_PKEY_Q_keygen(libctx, propq, type, curve);
}

#pragma GCC visibility pop
