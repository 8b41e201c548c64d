/*
 * test_tls.c -- unit tests of tls.c: reading PEM files (key secrecy and
 * ownership), building the context (mismatched keys, bad input), then
 * real handshakes over a socketpair against an OpenSSL client: the
 * certificate chosen by SNI (wildcards included) and the default one,
 * old protocols and CBC-only clients refused, tls_describe() and the
 * client certificate as tls_peer_cert() reports it.  The CA and the
 * certificates are made with the openssl command line at start-up.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "util.h"
#include "testutil.h"

#define HS_ROUNDS	200

enum hs_result { HS_OK, HS_CLIENT_FAIL, HS_SERVER_FAIL, HS_STUCK };

/* A client and a server SSL joined by a socketpair. */
struct pair {
	SSL		*c;
	SSL		*s;
	int		 fd[2];
	unsigned long	 server_err;	/* why the server failed */
};

static char test_dir[] = "/tmp/test_tls.XXXXXX";

static const char req_cnf[] =
	"[req]\ndistinguished_name = dn\n[dn]\n"
	"[ca_ext]\nbasicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n";

/*
 * Helpers.
 */

static char *
path(const char *name)
{
	static char	 buf[4][PATH_MAX];
	static int	 i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", test_dir, name);
	return buf[i];
}

/* A leaf signed by the CA; names[0] is also the CN. */
static int
make_cert(const char *stem, const char *newkey, const char *cn,
    const char *san, int serial)
{
	char	 ext[512];

	snprintf(ext, sizeof(ext), "basicConstraints = CA:FALSE\n"
	    "extendedKeyUsage = serverAuth,clientAuth\n"
	    "subjectAltName = %s\nsubjectKeyIdentifier = hash\n"
	    "authorityKeyIdentifier = keyid\n", san);
	if (tu_try_write_file(path("leaf.ext"), ext) == -1)
		return -1;
	return tu_run("umask 077; cd '%s' && openssl req -new -newkey %s "
	    "-nodes -keyout %s.key -subj '/CN=%s' -config req.cnf 2>/dev/null | "
	    "openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial %d "
	    "-days 30 -extfile leaf.ext -out %s.crt 2>/dev/null",
	    test_dir, newkey, stem, cn, serial, stem);
}

static int
setup_certs(void **state)
{
	(void)state;
	if (mkdtemp(test_dir) == NULL ||
	    tu_try_write_file(path("req.cnf"), req_cnf) == -1)
		return -1;
	if (tu_run("umask 077; cd '%s' && openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	    "-out ca.crt -days 30 -subj '/CN=Sluice Test CA' "
	    "-config req.cnf -extensions ca_ext 2>/dev/null", test_dir) == -1)
		return -1;
	/* a: the default, RSA; b: EC, a wildcard, sent with its chain. */
	if (make_cert("a", "rsa:2048", "mx.example.org",
	    "DNS:mx.example.org", 2) == -1 ||
	    make_cert("b", "ec -pkeyopt ec_paramgen_curve:P-256",
	    "mail.example.com", "DNS:mail.example.com,DNS:*.example.net",
	    3) == -1 ||
	    make_cert("client", "ec -pkeyopt ec_paramgen_curve:P-256",
	    "client.example.org", "DNS:client.example.org", 4) == -1)
		return -1;
	return tu_run("cd '%s' && cat b.crt ca.crt > b.chain", test_dir);
}

static int
teardown_certs(void **state)
{
	(void)state;
	return tu_rm_rf(test_dir);
}

static void
pem_load(struct tls_pem *pem, const char *chain, const char *key)
{
	char	 err[512];

	if (tls_pem_read(path(chain), path(key), pem, err,
	    sizeof(err)) == -1)
		fail_msg("tls_pem_read: %s", err);
}

/* The server context from certificates a (default) and b. */
static SSL_CTX *
server_ctx(int request_client_cert)
{
	struct tls_pem	 pem[2];
	SSL_CTX		*ctx;
	char		 err[512];

	pem_load(&pem[0], "a.crt", "a.key");
	pem_load(&pem[1], "b.chain", "b.key");
	ctx = tls_server_ctx(pem, 2, NULL, request_client_cert, err,
	    sizeof(err));
	if (ctx == NULL)
		fail_msg("tls_server_ctx: %s", err);
	tls_pem_free(&pem[0]);
	tls_pem_free(&pem[1]);
	return ctx;
}

/* A client trusting our CA; version 0 means OpenSSL's default. */
static SSL_CTX *
client_ctx(int version, const char *ciphers, const char *cert_stem)
{
	SSL_CTX	*ctx;
	char	 crt[64], key[64];

	assert_non_null(ctx = SSL_CTX_new(TLS_client_method()));
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, path("ca.crt"),
	    NULL), 1);
	if (version != 0) {
		/* Let the client offer what the server must refuse. */
		SSL_CTX_set_security_level(ctx, 0);
		assert_int_equal(SSL_CTX_set_min_proto_version(ctx,
		    version), 1);
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx,
		    version), 1);
	}
	if (ciphers != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
	if (cert_stem != NULL) {
		snprintf(crt, sizeof(crt), "%s.crt", cert_stem);
		snprintf(key, sizeof(key), "%s.key", cert_stem);
		assert_int_equal(SSL_CTX_use_certificate_file(ctx, path(crt),
		    SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, path(key),
		    SSL_FILETYPE_PEM), 1);
	}
	return ctx;
}

/* sni: sent and verified against the certificate; NULL for neither. */
static void
pair_new(struct pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *sni)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	assert_int_equal(fcntl(p->fd[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(p->fd[1], F_SETFL, O_NONBLOCK), 0);
	assert_non_null(p->c = SSL_new(cctx));
	assert_non_null(p->s = SSL_new(sctx));
	assert_int_equal(SSL_set_fd(p->c, p->fd[0]), 1);
	assert_int_equal(SSL_set_fd(p->s, p->fd[1]), 1);
	if (sni != NULL) {
		assert_int_equal(SSL_set_tlsext_host_name(p->c, sni), 1);
		assert_int_equal(SSL_set1_host(p->c, sni), 1);
		SSL_set_verify(p->c, SSL_VERIFY_PEER, NULL);
	}
}

static void
pair_free(struct pair *p)
{
	SSL_free(p->c);
	SSL_free(p->s);
	close(p->fd[0]);
	close(p->fd[1]);
	ERR_clear_error();
}

static int
hs_step(SSL *ssl, int (*fn)(SSL *), int *done)
{
	int	 r, e;

	if (*done)
		return 0;
	if ((r = fn(ssl)) == 1) {
		*done = 1;
		return 0;
	}
	e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Drive both ends in turn; say which one gave up first. */
static enum hs_result
handshake(struct pair *p)
{
	int	 cdone = 0, sdone = 0, i;

	ERR_clear_error();
	for (i = 0; i < HS_ROUNDS && !(cdone && sdone); i++) {
		if (hs_step(p->c, SSL_connect, &cdone) == -1)
			return HS_CLIENT_FAIL;
		if (hs_step(p->s, SSL_accept, &sdone) == -1) {
			p->server_err = ERR_peek_error();
			return HS_SERVER_FAIL;
		}
	}
	return cdone && sdone ? HS_OK : HS_STUCK;
}

static void
peer_cn(SSL *ssl, char *dst, size_t len)
{
	X509	*x;

	dst[0] = '\0';
	if ((x = SSL_get0_peer_certificate(ssl)) != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, dst, (int)len);
}

/* Handshake with sni and return the CN of the certificate received. */
static void
expect_cert(SSL_CTX *sctx, const char *sni, const char *cn)
{
	struct pair	 p;
	SSL_CTX		*cctx;
	char		 got[256];

	cctx = client_ctx(0, NULL, NULL);
	pair_new(&p, cctx, sctx, NULL);
	if (sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(p.c, sni), 1);
	assert_int_equal(handshake(&p), HS_OK);
	peer_cn(p.c, got, sizeof(got));
	assert_string_equal(got, cn);
	pair_free(&p);
	SSL_CTX_free(cctx);
}

/*
 * Reading PEM files.
 */

static void
test_pem_read(void **state)
{
	struct tls_pem	 pem;

	(void)state;
	pem_load(&pem, "b.chain", "b.key");
	assert_true(pem.chain_len > 0 && pem.key_len > 0);
	assert_int_equal(strlen(pem.chain), pem.chain_len);
	assert_non_null(strstr(pem.chain, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(pem.key, "PRIVATE KEY"));
	tls_pem_free(&pem);
	assert_null(pem.key);
	assert_null(pem.chain);
}

static void
expect_key_refused(mode_t mode, const char *why)
{
	struct tls_pem	 pem;
	char		 err[512], want[PATH_MAX + 128];
	const char	*k = path("mode.key");

	assert_int_equal(tu_run("cp '%s' '%s'", path("a.key"), k), 0);
	assert_int_equal(chmod(k, mode), 0);
	assert_int_equal(tls_pem_read(path("a.crt"), k, &pem, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: private key is %s by group or "
	    "others (chmod 600)", k, why);
	assert_string_equal(err, want);
	assert_null(pem.key);
	assert_null(pem.chain);
}

static void
test_pem_key_mode(void **state)
{
	struct tls_pem	 pem;
	char		 err[512];

	(void)state;
	expect_key_refused(0640, "readable");
	expect_key_refused(0604, "readable");
	expect_key_refused(0644, "readable");
	expect_key_refused(0620, "writable");
	assert_int_equal(chmod(path("mode.key"), 0400), 0);
	assert_int_equal(tls_pem_read(path("a.crt"), path("mode.key"), &pem,
	    err, sizeof(err)), 0);
	tls_pem_free(&pem);
}

static void
test_pem_key_owner(void **state)
{
	struct tls_pem	 pem;
	char		 err[512];
	const char	*k = path("owner.key");

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(tu_run("cp '%s' '%s'", path("a.key"), k), 0);
	assert_int_equal(chown(k, 65534, 65534), 0);
	assert_int_equal(tls_pem_read(path("a.crt"), k, &pem, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "private key is owned by uid 65534"));
	assert_int_equal(strncmp(err, k, strlen(k)), 0);
}

static void
test_pem_bad_files(void **state)
{
	struct tls_pem	 pem;
	char		 err[512], want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(tls_pem_read(path("none.crt"), path("a.key"), &pem,
	    err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory",
	    path("none.crt"));
	assert_string_equal(err, want);
	assert_int_equal(tls_pem_read(test_dir, path("a.key"), &pem, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, ": not a regular file"));
	tu_write_file(path("empty.crt"), "");
	assert_int_equal(tls_pem_read(path("empty.crt"), path("a.key"), &pem,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": empty file"));
	assert_int_equal(tu_run("head -c 1048577 /dev/zero > '%s'",
	    path("big.crt")), 0);
	assert_int_equal(tls_pem_read(path("big.crt"), path("a.key"), &pem,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": larger than 1048576 bytes"));
}

/*
 * Building the context.
 */

static void
expect_ctx_error(const char *chain, const char *key, const char *want)
{
	struct tls_pem	 pem[2];
	char		 err[512];

	pem_load(&pem[0], "a.crt", "a.key");
	pem_load(&pem[1], chain, key);
	assert_null(tls_server_ctx(pem, 2, NULL, 0, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\", want \"%s\"", err, want);
	tls_pem_free(&pem[0]);
	tls_pem_free(&pem[1]);
}

static void
test_ctx_mismatch(void **state)
{
	(void)state;
	/* Another type of key, then another key of the same type. */
	expect_ctx_error("b.chain", "a.key", "certificate 2 "
	    "(mail.example.com): private key does not match the certificate");
	expect_ctx_error("b.chain", "client.key", "certificate 2 "
	    "(mail.example.com): private key does not match the certificate");
	expect_ctx_error("client.key", "b.key", "certificate 2: bad chain");
	assert_int_equal(tu_run("umask 077; cp '%s' '%s'", path("b.chain"),
	    path("notakey.key")), 0);
	expect_ctx_error("b.chain", "notakey.key", "certificate 2 "
	    "(mail.example.com): bad private key");
}

static void
test_ctx_bad_args(void **state)
{
	struct tls_pem	 pem;
	SSL_CTX		*ctx;
	char		 err[512];

	(void)state;
	pem_load(&pem, "a.crt", "a.key");
	assert_null(tls_server_ctx(&pem, 0, NULL, 0, err, sizeof(err)));
	assert_string_equal(err, "0 certificates, want 1 to 16");
	assert_null(tls_server_ctx(&pem, 1, "NOPE", 0, err, sizeof(err)));
	assert_string_equal(err, "ciphers \"NOPE\": no usable cipher");
	/* One certificate is enough; the reference count works. */
	assert_non_null(ctx = tls_server_ctx(&pem, 1, NULL, 1, err,
	    sizeof(err)));
	tls_ctx_ref(ctx);
	tls_ctx_unref(ctx);
	expect_cert(ctx, "mx.example.org", "mx.example.org");
	expect_cert(ctx, "other.example.net", "mx.example.org");
	tls_ctx_unref(ctx);
	tls_pem_free(&pem);
	assert_int_equal(ERR_peek_error(), 0);
}

/*
 * Handshakes.
 */

static void
test_sni(void **state)
{
	struct pair	 p;
	SSL_CTX		*sctx, *cctx;
	const char	*names[] = { "smtp.example.net", "mail.example.com",
			    "MAIL.Example.COM" };
	size_t		 i;

	(void)state;
	sctx = server_ctx(0);
	cctx = client_ctx(0, NULL, NULL);
	/* The client verifies chain and name, so a wrong pick fails. */
	for (i = 0; i < nitems(names); i++) {
		pair_new(&p, cctx, sctx, names[i]);
		assert_int_equal(handshake(&p), HS_OK);
		assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
		assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.c)),
		    2);
		pair_free(&p);
	}
	pair_new(&p, cctx, sctx, "mx.example.org");
	assert_int_equal(handshake(&p), HS_OK);
	assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
	pair_free(&p);
	SSL_CTX_free(cctx);
	tls_ctx_unref(sctx);
}

static void
test_sni_default(void **state)
{
	SSL_CTX	*sctx;

	(void)state;
	sctx = server_ctx(0);
	expect_cert(sctx, NULL, "mx.example.org");
	expect_cert(sctx, "unknown.test", "mx.example.org");
	/* A wildcard covers one label only (RFC 6125 §6.4.3). */
	expect_cert(sctx, "a.b.example.net", "mx.example.org");
	expect_cert(sctx, "example.net", "mx.example.org");
	expect_cert(sctx, "x.example.net", "mail.example.com");
	tls_ctx_unref(sctx);
}

/* An SSL made before the last unref still reaches the SNI children. */
static void
test_ctx_lifetime(void **state)
{
	struct pair	 p;
	SSL_CTX		*sctx, *cctx;

	(void)state;
	sctx = server_ctx(0);
	cctx = client_ctx(0, NULL, NULL);
	pair_new(&p, cctx, sctx, "smtp.example.net");
	tls_ctx_unref(sctx);
	assert_int_equal(handshake(&p), HS_OK);
	assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
	pair_free(&p);
	SSL_CTX_free(cctx);
}

static void
expect_refused(int version, const char *ciphers, int reason)
{
	struct pair	 p;
	SSL_CTX		*sctx, *cctx;

	sctx = server_ctx(0);
	cctx = client_ctx(version, ciphers, NULL);
	pair_new(&p, cctx, sctx, NULL);
	assert_int_equal(handshake(&p), HS_SERVER_FAIL);
	assert_int_equal(ERR_GET_REASON(p.server_err), reason);
	pair_free(&p);
	SSL_CTX_free(cctx);
	tls_ctx_unref(sctx);
}

static void
test_old_protocols(void **state)
{
	(void)state;
	expect_refused(TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0",
	    SSL_R_UNSUPPORTED_PROTOCOL);
	expect_refused(TLS1_VERSION, "DEFAULT:@SECLEVEL=0",
	    SSL_R_UNSUPPORTED_PROTOCOL);
}

static void
test_cbc_refused(void **state)
{
	(void)state;
	expect_refused(TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA256:"
	    "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:"
	    "ECDHE-ECDSA-AES128-SHA256:AES128-SHA:AES256-SHA256",
	    SSL_R_NO_SHARED_CIPHER);
	/* Static RSA key exchange, even with GCM. */
	expect_refused(TLS1_2_VERSION, "AES128-GCM-SHA256:AES256-GCM-SHA384",
	    SSL_R_NO_SHARED_CIPHER);
}

static void
test_describe(void **state)
{
	struct pair	 p;
	SSL_CTX		*sctx, *cctx;
	char		 buf[128];

	(void)state;
	sctx = server_ctx(0);
	cctx = client_ctx(0, NULL, NULL);
	pair_new(&p, cctx, sctx, NULL);
	assert_int_equal(handshake(&p), HS_OK);
	tls_describe(p.s, buf, sizeof(buf));
	assert_string_equal(buf,
	    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
	tls_describe(p.s, buf, 8);
	assert_string_equal(buf, "TLSv1.3");
	pair_free(&p);
	SSL_CTX_free(cctx);

	/* TLS 1.2 with the default certificate (RSA) and suites. */
	cctx = client_ctx(TLS1_2_VERSION, NULL, NULL);
	pair_new(&p, cctx, sctx, "mx.example.org");
	assert_int_equal(handshake(&p), HS_OK);
	tls_describe(p.s, buf, sizeof(buf));
	assert_string_equal(buf,
	    "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)");
	pair_free(&p);
	SSL_CTX_free(cctx);
	tls_ctx_unref(sctx);
}

static void
expect_peer_cert(int request, const char *client_stem, int version,
    const char *want)
{
	struct pair	 p;
	SSL_CTX		*sctx, *cctx;
	char		 buf[256];

	sctx = server_ctx(request);
	cctx = client_ctx(0, NULL, client_stem);
	if (version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(cctx,
		    version), 1);
	pair_new(&p, cctx, sctx, "smtp.example.net");
	assert_int_equal(handshake(&p), HS_OK);
	tls_peer_cert(p.s, buf, sizeof(buf));
	assert_string_equal(buf, want);
	pair_free(&p);
	SSL_CTX_free(cctx);
	tls_ctx_unref(sctx);
}

/* Run expect_peer_cert() at debug level, stderr going to a file. */
static void
expect_logged(const char *want_peer, const char *want_log)
{
	FILE	*f;
	char	 text[4096], *p;
	size_t	 n;
	int	 fd, saved;

	assert_true((fd = open(path("log.txt"), O_RDWR | O_CREAT | O_TRUNC,
	    0600)) != -1);
	fflush(stderr);
	assert_true((saved = dup(2)) != -1);
	assert_int_equal(dup2(fd, 2), 2);
	log_verbose = LOG_LVL_DEBUG;
	expect_peer_cert(1, "client", 0, want_peer);
	log_verbose = LOG_LVL_INFO;
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	assert_non_null(f = fopen(path("log.txt"), "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	/* Once, with the verification result (not "ok"). */
	if ((p = strstr(text, want_log)) == NULL ||
	    strstr(p + 1, want_log) != NULL ||
	    strncmp(p + strlen(want_log), "ok", 2) == 0)
		fail_msg("log \"%s\", want \"%s\" once", text, want_log);
}

static void
test_client_cert(void **state)
{
	const char	*want = "subject=CN=client.example.org, "
			    "issuer=CN=Sluice Test CA";

	(void)state;
	/* We trust no client CA: logged with its verify error all the same. */
	expect_logged(want, "tls client-cert subject=CN=client.example.org "
	    "verify=");
	expect_peer_cert(1, "client", TLS1_2_VERSION, want);
	/* Asked for, never required. */
	expect_peer_cert(1, NULL, 0, "");
	expect_peer_cert(1, NULL, TLS1_2_VERSION, "");
	/* Not asked for: the client sends none. */
	expect_peer_cert(0, "client", 0, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_read),
		cmocka_unit_test(test_pem_key_mode),
		cmocka_unit_test(test_pem_key_owner),
		cmocka_unit_test(test_pem_bad_files),
		cmocka_unit_test(test_ctx_mismatch),
		cmocka_unit_test(test_ctx_bad_args),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_sni_default),
		cmocka_unit_test(test_ctx_lifetime),
		cmocka_unit_test(test_old_protocols),
		cmocka_unit_test(test_cbc_refused),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_client_cert),
	};

	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
