/*
 * tls.c -- server-side TLS for STARTTLS (RFC 3207) and implicit TLS
 * (RFC 8314), see tls.h.  The parent reads the PEM files as root
 * (tls_pem_read) and builds the SSL_CTX; the SMTP workers only use it.
 * Untrusted input here is the peer's ClientHello (its SNI name) and its
 * client certificate, which is only described for the log, never
 * trusted.
 *
 * SNI: one SSL_CTX per certificate.  The first is the one handed out;
 * its servername callback switches the SSL to the child context whose
 * certificate matches the name.  The children hang off the parent's
 * ex_data and are freed with it.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define TLS_PEM_MAX	(1024 * 1024)	/* a chain or key file */
#define TLS_NAME_MAX	256		/* a CN as we print it */
#define TLS_SID_CTX	"sluice"

/*
 * Modern TLS 1.2 suites only: forward-secret ECDHE, AEAD (no CBC, no
 * SHA-1 MAC, no RSA key exchange), as Mozilla's "intermediate" minus
 * DHE.  TLS 1.3 keeps OpenSSL's default suites.
 */
#define TLS_CIPHERS_DEFAULT						\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"	\
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"	\
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS	"X25519:P-256:P-384"
/* "*.example.org" matches one label; "f*.example.org" matches nothing. */
#define TLS_HOST_FLAGS	X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS

/* The per-certificate children of a parent context. */
struct tls_sni {
	unsigned	 n;
	SSL_CTX		*ctx[TLS_CERTS_MAX - 1];
};

static void	tls_sni_index_init(void);
static void	tls_sni_free_cb(void *, void *, CRYPTO_EX_DATA *, int, long,
		    void *);
static int	tls_servername_cb(SSL *, int *, void *);
static int	tls_verify_cb(int, X509_STORE_CTX *);
static int	tls_no_password_cb(char *, int, int, void *);
static int	tls_file_read(const char *, int, char **, size_t *, char *,
		    size_t);
static int	tls_file_check(const char *, int, const struct stat *, char *,
		    size_t);
static SSL_CTX	*tls_ctx_new(const char *, int, char *, size_t);
static int	tls_ctx_load(SSL_CTX *, const struct tls_pem *, unsigned,
		    char *, size_t);
static int	tls_load_chain(SSL_CTX *, const struct tls_pem *);
static void	tls_cert_label(SSL_CTX *, unsigned, char *, size_t);
static void	tls_ssl_error(char *, size_t);
static void	tls_name_cn(const X509_NAME *, char *, size_t);

static CRYPTO_ONCE	tls_sni_once = CRYPTO_ONCE_STATIC_INIT;
static int		tls_sni_index = -1;

/*
 * Reading PEM files.
 */

int
tls_pem_read(const char *chain_path, const char *key_path,
    struct tls_pem *pem, char *err, size_t errlen)
{
	memset(pem, 0, sizeof(*pem));
	if (tls_file_read(chain_path, 0, &pem->chain, &pem->chain_len, err,
	    errlen) == -1)
		return -1;
	if (tls_file_read(key_path, 1, &pem->key, &pem->key_len, err,
	    errlen) == -1) {
		tls_pem_free(pem);
		return -1;
	}
	return 0;
}

void
tls_pem_free(struct tls_pem *pem)
{
	if (pem->key != NULL)
		OPENSSL_cleanse(pem->key, pem->key_len);
	free(pem->key);
	free(pem->chain);
	memset(pem, 0, sizeof(*pem));
}

/*
 * Read a whole regular file, at most TLS_PEM_MAX bytes, NUL-terminated.
 * The checks are made on the open descriptor, so the file checked is the
 * file read.
 */
static int
tls_file_read(const char *path, int secret, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	struct stat	 st;
	char		*p = NULL;
	size_t		 cap, len = 0;
	ssize_t		 r;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (tls_file_check(path, secret, &st, err, errlen) == -1)
		goto fail;
	/* One byte over the size seen, so a file that grew is noticed. */
	cap = (size_t)st.st_size + 2;
	p = xmalloc(cap);
	while (len < cap - 1) {
		r = read(fd, p + len, cap - 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: file changed while reading", path);
		goto fail;
	}
	p[len] = '\0';
	close(fd);
	*out = p;
	*outlen = len;
	return 0;
fail:
	if (p != NULL) {
		OPENSSL_cleanse(p, cap);
		free(p);
	}
	close(fd);
	return -1;
}

/* Type and size of any PEM file; owner and mode of a key file. */
static int
tls_file_check(const char *path, int secret, const struct stat *st,
    char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st->st_size == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		return -1;
	}
	if (st->st_size > TLS_PEM_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    TLS_PEM_MAX);
		return -1;
	}
	if (!secret)
		return 0;
	/* OpenSMTPD check_file_secrecy(): a key only its owner can use. */
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(err, errlen, "%s: private key is owned by uid %lu, "
		    "not root or uid %lu", path, (unsigned long)st->st_uid,
		    (unsigned long)geteuid());
		return -1;
	}
	if (st->st_mode & (S_IRGRP | S_IROTH)) {
		snprintf(err, errlen, "%s: private key is readable by group "
		    "or others (chmod 600)", path);
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s: private key is writable by group "
		    "or others (chmod 600)", path);
		return -1;
	}
	return 0;
}

/*
 * Building the context.
 */

SSL_CTX *
tls_server_ctx(const struct tls_pem *pem, unsigned n, const char *ciphers,
    int request_client_cert, char *err, size_t errlen)
{
	struct tls_sni	*sni;
	SSL_CTX		*ctx, *child;
	unsigned	 i;

	if (n == 0 || n > TLS_CERTS_MAX) {
		snprintf(err, errlen, "%u certificates, want 1 to %d", n,
		    TLS_CERTS_MAX);
		return NULL;
	}
	if (!CRYPTO_THREAD_run_once(&tls_sni_once, tls_sni_index_init) ||
	    tls_sni_index == -1) {
		snprintf(err, errlen, "cannot allocate an SSL_CTX ex_data "
		    "index");
		return NULL;
	}
	if ((ctx = tls_ctx_new(ciphers, request_client_cert, err,
	    errlen)) == NULL)
		return NULL;
	/* Attached first, so freeing ctx frees every child made so far. */
	sni = xcalloc(1, sizeof(*sni));
	if (!SSL_CTX_set_ex_data(ctx, tls_sni_index, sni)) {
		free(sni);
		snprintf(err, errlen, "cannot attach SNI table");
		goto fail;
	}
	if (tls_ctx_load(ctx, &pem[0], 0, err, errlen) == -1)
		goto fail;
	for (i = 1; i < n; i++) {
		if ((child = tls_ctx_new(ciphers, request_client_cert, err,
		    errlen)) == NULL)
			goto fail;
		sni->ctx[sni->n++] = child;
		if (tls_ctx_load(child, &pem[i], i, err, errlen) == -1)
			goto fail;
	}
	if (n > 1) {
		SSL_CTX_set_tlsext_servername_callback(ctx,
		    tls_servername_cb);
		SSL_CTX_set_tlsext_servername_arg(ctx, sni);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_ctx_ref(SSL_CTX *ctx)
{
	if (!SSL_CTX_up_ref(ctx))
		fatalx("tls: SSL_CTX_up_ref failed");
}

void
tls_ctx_unref(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/*
 * One context with our protocol settings and no certificate.  Parent and
 * children get the same settings: SSL_set_SSL_CTX() takes the certificate
 * and session id context from the child, the rest stays the parent's.
 */
static SSL_CTX *
tls_ctx_new(const char *ciphers, int request_client_cert, char *err,
    size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_ssl_error(err, errlen);
		return NULL;
	}
	/* TLS 1.2 (RFC 5246) and 1.3 (RFC 8446) only, as RFC 8996 asks. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		tls_ssl_error(err, errlen);
		goto fail;
	}
	/* No tickets: no ticket key to rotate across workers. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_TICKET);
	if (ciphers == NULL)
		ciphers = TLS_CIPHERS_DEFAULT;
	if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
		snprintf(err, errlen, "ciphers \"%s\": no usable cipher",
		    ciphers);
		ERR_clear_error();
		goto fail;
	}
	/* Required for session resumption once a client cert is asked for. */
	if (!SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)TLS_SID_CTX, sizeof(TLS_SID_CTX) - 1)) {
		tls_ssl_error(err, errlen);
		goto fail;
	}
	/* Ask, never require (RFC 3207 §4.1: a public relay can't). */
	if (request_client_cert)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Certificate i's chain and key into ctx, checking they match. */
static int
tls_ctx_load(SSL_CTX *ctx, const struct tls_pem *pem, unsigned i,
    char *err, size_t errlen)
{
	char	 label[TLS_NAME_MAX + 32];
	EVP_PKEY *key;
	BIO	*bio;

	if (tls_load_chain(ctx, pem) == -1) {
		snprintf(err, errlen, "certificate %u: bad chain: ", i + 1);
		tls_ssl_error(err + strlen(err), errlen - strlen(err));
		return -1;
	}
	tls_cert_label(ctx, i, label, sizeof(label));
	if (pem->key == NULL || pem->key_len > INT_MAX ||
	    (bio = BIO_new_mem_buf(pem->key, (int)pem->key_len)) == NULL) {
		snprintf(err, errlen, "%s: no private key", label);
		return -1;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_password_cb, NULL);
	BIO_free(bio);
	if (key == NULL) {
		snprintf(err, errlen, "%s: bad private key (encrypted keys "
		    "are not supported): ", label);
		tls_ssl_error(err + strlen(err), errlen - strlen(err));
		return -1;
	}
	if (!SSL_CTX_use_PrivateKey(ctx, key) ||
	    !SSL_CTX_check_private_key(ctx)) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		snprintf(err, errlen, "%s: private key does not match the "
		    "certificate", label);
		return -1;
	}
	EVP_PKEY_free(key);
	return 0;
}

/* The leaf, then any intermediates; -1 with the reason queued. */
static int
tls_load_chain(SSL_CTX *ctx, const struct tls_pem *pem)
{
	X509	*x;
	BIO	*bio;
	unsigned long e;
	int	 rc = -1;

	if (pem->chain == NULL || pem->chain_len > INT_MAX ||
	    (bio = BIO_new_mem_buf(pem->chain, (int)pem->chain_len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509_AUX(bio, NULL, tls_no_password_cb,
	    NULL)) == NULL)
		goto done;
	if (!SSL_CTX_use_certificate(ctx, x)) {
		X509_free(x);
		goto done;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, tls_no_password_cb,
	    NULL)) != NULL) {
		if (!SSL_CTX_add0_chain_cert(ctx, x)) {
			X509_free(x);
			goto done;
		}
	}
	/* The end of the text is the only expected way out of the loop. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		rc = 0;
	}
done:
	BIO_free(bio);
	return rc;
}

/* "certificate 2 (mx.example.org)" for error messages. */
static void
tls_cert_label(SSL_CTX *ctx, unsigned i, char *dst, size_t len)
{
	char	 cn[TLS_NAME_MAX];
	X509	*x;

	cn[0] = '\0';
	if ((x = SSL_CTX_get0_certificate(ctx)) != NULL)
		tls_name_cn(X509_get_subject_name(x), cn, sizeof(cn));
	if (cn[0] != '\0')
		snprintf(dst, len, "certificate %u (%s)", i + 1, cn);
	else
		snprintf(dst, len, "certificate %u", i + 1);
}

/*
 * Callbacks.
 */

static void
tls_sni_index_init(void)
{
	tls_sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
	    tls_sni_free_cb);
}

/* Called for every SSL_CTX freed, with ours or NULL. */
static void
tls_sni_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct tls_sni	*sni = ptr;
	unsigned	 i;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (sni == NULL)
		return;
	for (i = 0; i < sni->n; i++)
		SSL_CTX_free(sni->ctx[i]);
	free(sni);
}

/*
 * Pick the certificate for the client's SNI (RFC 6066 §3).  A name that
 * none matches keeps the default certificate: SMTP clients rarely
 * verify, and a refusal would only push them back to plaintext.
 */
static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_sni	*sni = arg;
	const char		*name;
	X509			*x;
	unsigned		 i;

	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL || sni == NULL)
		return SSL_TLSEXT_ERR_OK;
	x = SSL_CTX_get0_certificate(SSL_get_SSL_CTX(ssl));
	if (x != NULL && X509_check_host(x, name, 0, TLS_HOST_FLAGS, NULL) == 1)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < sni->n; i++) {
		x = SSL_CTX_get0_certificate(sni->ctx[i]);
		if (x == NULL || X509_check_host(x, name, 0,
		    TLS_HOST_FLAGS, NULL) != 1)
			continue;
		if (SSL_set_SSL_CTX(ssl, sni->ctx[i]) == NULL) {
			*alert = SSL_AD_INTERNAL_ERROR;
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		}
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Client certificates are only logged: accept whatever comes.  The
 * last call, depth 0 with ok set, carries the first error seen, if any.
 */
static int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	char	 cn[TLS_NAME_MAX];
	X509	*x;
	int	 e;

	if (log_verbose < LOG_LVL_DEBUG || !ok ||
	    X509_STORE_CTX_get_error_depth(xs) != 0 ||
	    (x = X509_STORE_CTX_get_current_cert(xs)) == NULL)
		return 1;
	tls_name_cn(X509_get_subject_name(x), cn, sizeof(cn));
	e = X509_STORE_CTX_get_error(xs);
	log_debug("tls client-cert subject=CN=%s verify=%s", cn,
	    e == X509_V_OK ? "ok" : X509_verify_cert_error_string(e));
	return 1;
}

/* Never prompt on a terminal for a key's passphrase. */
static int
tls_no_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0;
}

/*
 * Describing a session for the log.
 */

void
tls_describe(SSL *ssl, char *dst, size_t len)
{
	const SSL_CIPHER	*c;
	int			 alg = 0, bits;

	if ((c = SSL_get_current_cipher(ssl)) == NULL) {
		snprintf(dst, len, "%s", SSL_get_version(ssl));
		return;
	}
	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(dst, len, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), SSL_CIPHER_get_name(c), bits, alg);
}

void
tls_peer_cert(SSL *ssl, char *dst, size_t len)
{
	char	 subject[TLS_NAME_MAX], issuer[TLS_NAME_MAX];
	X509	*x;

	if (len == 0)
		return;
	dst[0] = '\0';
	if ((x = SSL_get0_peer_certificate(ssl)) == NULL)
		return;
	tls_name_cn(X509_get_subject_name(x), subject, sizeof(subject));
	tls_name_cn(X509_get_issuer_name(x), issuer, sizeof(issuer));
	snprintf(dst, len, "subject=CN=%s, issuer=CN=%s", subject, issuer);
}

/*
 * Helpers.
 */

/* The first CN of name, as UTF-8 escaped for the log (peer text). */
static void
tls_name_cn(const X509_NAME *name, char *dst, size_t len)
{
	const X509_NAME_ENTRY	*e;
	unsigned char		*utf8;
	int			 i, n;

	dst[0] = '\0';
	if (name == NULL ||
	    (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL)
		return;
	if ((n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(e))) < 0) {
		ERR_clear_error();
		return;
	}
	log_escape(dst, len, (const char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
}

/* The oldest queued OpenSSL error's reason; clears the queue. */
static void
tls_ssl_error(char *dst, size_t len)
{
	const char	*reason;
	unsigned long	 e;

	if ((e = ERR_peek_error()) == 0)
		snprintf(dst, len, "unknown OpenSSL error");
	else if ((reason = ERR_reason_error_string(e)) != NULL)
		snprintf(dst, len, "%s", reason);
	else
		ERR_error_string_n(e, dst, len);
	ERR_clear_error();
}
