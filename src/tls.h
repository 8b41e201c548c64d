/*
 * tls.h -- server-side TLS (OpenSSL 3): the SSL_CTX that STARTTLS
 * (RFC 3207) and implicit TLS (RFC 8314) use, built from PEM text so the
 * unprivileged process never opens key files itself; several
 * certificates chosen by SNI; TLS 1.2 and 1.3 only.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

#define TLS_CERTS_MAX	16

/* One certificate: the chain and its key, as PEM text. */
struct tls_pem {
	char	*chain;		/* leaf first, then intermediates */
	size_t	 chain_len;
	char	*key;		/* wiped and freed by tls_pem_free() */
	size_t	 key_len;
};

/* Read a chain file and a key file (refusing a key that group or others
 * can read).  0, or -1 with "FILE: message" in err. */
int	tls_pem_read(const char *chain_path, const char *key_path,
	    struct tls_pem *, char *err, size_t errlen);
void	tls_pem_free(struct tls_pem *);

/*
 * Build a server context from n certificates; the first is the default,
 * the others are chosen when the client's SNI matches one of their
 * names (subjectAltName DNS entries, wildcards "*.example.org" honoured).
 * ciphers: a TLS 1.2 cipher list, NULL for our modern default.
 * request_client_cert: ask for (never require) a client certificate, so
 * it can be logged.  Returns NULL with a message in err.
 */
SSL_CTX	*tls_server_ctx(const struct tls_pem *, unsigned n,
	    const char *ciphers, int request_client_cert, char *err,
	    size_t errlen);
/* Reference counting, so a reload can swap the context under sessions
 * that still use the old one. */
void	tls_ctx_ref(SSL_CTX *);
void	tls_ctx_unref(SSL_CTX *);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
void	tls_describe(SSL *, char *dst, size_t len);
/* Subject and issuer CN of the client's certificate, or "" if none. */
void	tls_peer_cert(SSL *, char *dst, size_t len);

#endif
