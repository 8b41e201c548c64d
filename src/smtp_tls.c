/*
 * smtp_tls.c -- TLS for inbound sessions: STARTTLS (RFC 3207) and
 * implicit TLS on submissions listeners (RFC 8314), over libevent's
 * OpenSSL bufferevents.  The server context is shared by all workers and
 * swapped whole on reload; sessions keep the one they started with.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "config.h"
#include "log.h"
#include "smtp_server.h"
#include "smtp_session.h"
#include "tls.h"

static pthread_mutex_t	 tls_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX		*tls_current;

void
smtp_tls_set_ctx(SSL_CTX *ctx)
{
	SSL_CTX *old;

	pthread_mutex_lock(&tls_lock);
	old = tls_current;
	tls_current = ctx;
	pthread_mutex_unlock(&tls_lock);
	if (old != NULL)
		tls_ctx_unref(old);
}

int
smtp_tls_available(void)
{
	int r;

	pthread_mutex_lock(&tls_lock);
	r = tls_current != NULL;
	pthread_mutex_unlock(&tls_lock);
	return r;
}

/* SSL_new() takes its own reference on the context. */
static SSL *
smtp_tls_new(void)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls_lock);
	if (tls_current != NULL)
		ssl = SSL_new(tls_current);
	pthread_mutex_unlock(&tls_lock);
	return ssl;
}

int
smtp_tls_start(struct smtp_session *s, int fd)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = smtp_tls_new()) == NULL) {
		log_warnx("%s[%s]: TLS not available", s->host, s->ip);
		return -1;
	}
	if (fd >= 0)
		bev = bufferevent_openssl_socket_new(s->ctx->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_openssl_filter_new(s->ctx->base, s->bev, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* Clients often close without close_notify; that is no error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	s->bev = bev;
	s->ssl = ssl;
	s->state = fd >= 0 ? SESS_CMD : SESS_TLS;
	smtp_session_setcb(s);
	return 0;
}

void
smtp_tls_connected(struct smtp_session *s)
{
	char peer[512];

	tls_describe(s->ssl, s->tls_info, sizeof(s->tls_info));
	tls_peer_cert(s->ssl, peer, sizeof(peer));
	log_info("%s TLS connection established from %s[%s]: %s%s%s",
	    peer[0] ? "Untrusted" : "Anonymous", s->host, s->ip, s->tls_info,
	    peer[0] ? ", client certificate " : "", peer);
	if (s->state == SESS_TLS)
		s->state = SESS_CMD;
}
