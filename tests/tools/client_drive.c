/*
 * client_drive.c -- run the delivery client (src/smtp_client.c) once
 * against a server, for tests/client/.  Sends the message in FILE to
 * the recipients COUNT times over one connection, then QUIT, and prints
 * one JSON object a line on stdout:
 *
 *   {"event":"ready","tls":null|"TLSv1.3 TLS_AES_256_GCM_SHA384"}
 *   {"event":"rcpt","msg":0,"rcpt":"a@example.org","code":250,"reply":"..."}
 *   {"event":"done","msg":0}
 *   {"event":"closed","code":221,"reply":"...","tls":...}
 *
 * usage: client_drive [-l8Uv] [-t none|opportunistic|required|implicit]
 *	  [-V] [-C cafile] [-N peer_name] [-u user -p pass] [-T secs]
 *	  [-n count] [-O offset] [-f sender] [-D notify] [-R ret] [-E envid]
 *	  ip port file rcpt...
 *
 * -O: the message starts at that offset of FILE (a spool-like file);
 * -V: set SSL_VERIFY_PEER on the context (matters for implicit TLS);
 * -C: trust anchors (default: the system store).
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/ssl.h>

#include "log.h"
#include "smtp_client.h"
#include "util.h"

struct drive {
	struct event_base	*base;
	struct smtp_client_msg	*msgs;
	unsigned		 nmsgs, next;
	int			 failed;
};

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
json_tls(struct smtp_client *c)
{
	const char *t = smtp_client_tls_info(c);

	if (t == NULL)
		fputs("null", stdout);
	else
		json_str(t);
}

static void
drive_next(struct smtp_client *c, struct drive *d)
{
	if (d->next < d->nmsgs)
		smtp_client_send(c, &d->msgs[d->next++]);
	else
		smtp_client_quit(c);
}

static void
drive_ready(struct smtp_client *c, void *arg)
{
	printf("{\"event\":\"ready\",\"tls\":");
	json_tls(c);
	printf(",\"peer\":");
	json_str(smtp_client_peer(c));
	printf("}\n");
	fflush(stdout);
	drive_next(c, arg);
}

static void
drive_done(struct smtp_client *c, struct smtp_client_msg *m, void *arg)
{
	struct drive *d = arg;
	unsigned i, n = (unsigned)(m - d->msgs);

	for (i = 0; i < m->nrcpts; i++) {
		printf("{\"event\":\"rcpt\",\"msg\":%u,\"rcpt\":", n);
		json_str(m->rcpts[i].addr);
		printf(",\"code\":%d,\"reply\":", m->rcpts[i].code);
		json_str(m->rcpts[i].reply);
		printf("}\n");
	}
	printf("{\"event\":\"done\",\"msg\":%u}\n", n);
	fflush(stdout);
	drive_next(c, d);
}

static void
drive_closed(struct smtp_client *c, int code, const char *reply, void *arg)
{
	struct drive *d = arg;

	printf("{\"event\":\"closed\",\"code\":%d,\"reply\":", code);
	json_str(reply);
	printf(",\"tls\":");
	json_tls(c);
	printf("}\n");
	fflush(stdout);
	event_base_loopbreak(d->base);
}

static enum smtp_client_tls
drive_tls_mode(const char *s)
{
	if (strcmp(s, "none") == 0)
		return CLIENT_TLS_NONE;
	if (strcmp(s, "opportunistic") == 0)
		return CLIENT_TLS_OPPORTUNISTIC;
	if (strcmp(s, "required") == 0)
		return CLIENT_TLS_REQUIRED;
	if (strcmp(s, "implicit") == 0)
		return CLIENT_TLS_IMPLICIT;
	fatalx("bad TLS mode %s", s);
}

static SSL_CTX *
drive_ssl_ctx(const char *cafile, int verify)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		fatalx("SSL_CTX_new");
	if (cafile != NULL ? SSL_CTX_load_verify_locations(ctx, cafile,
	    NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1)
		fatalx("cannot load trust anchors");
	if (verify)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static uint64_t
drive_num(const char *s)
{
	uint64_t v;

	if (parse_u64(s, 0, UINT32_MAX, &v) == -1)
		fatalx("bad number %s", s);
	return v;
}

/* nmsgs copies of proto, each with its own recipients for the results. */
static void
drive_msgs(struct drive *d, const struct smtp_client_msg *proto,
    char **rcpts, const char *notify)
{
	unsigned i, j;

	d->msgs = xcalloc(d->nmsgs, sizeof(*d->msgs));
	for (i = 0; i < d->nmsgs; i++) {
		d->msgs[i] = *proto;
		d->msgs[i].rcpts = xcalloc(proto->nrcpts ? proto->nrcpts : 1,
		    sizeof(struct smtp_client_rcpt));
		for (j = 0; j < proto->nrcpts; j++) {
			d->msgs[i].rcpts[j].addr = rcpts[j];
			d->msgs[i].rcpts[j].notify = notify;
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: client_drive [-l8UvV] [-t mode] [-C cafile] "
	    "[-N name] [-u user -p pass] [-T secs] [-n count] [-O offset] "
	    "[-f sender] [-D notify] [-R ret] [-E envid] ip port file "
	    "rcpt...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct smtp_client_params p = { .helo = "client.test" };
	struct smtp_client_cbs cbs = { drive_ready, drive_done, drive_closed };
	struct smtp_client_msg proto = { .id = "DRIVE", .sender = "" };
	const char *cafile = NULL, *notify = NULL;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST |
	    AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai;
	struct drive d = { .nmsgs = 1 };
	unsigned timeout = 30, i;
	int ch, verify = 0, verbose = 0;
	uint64_t off = 0;
	struct stat st;

	while ((ch = getopt(argc, argv, "l8UvVt:C:N:u:p:T:n:O:f:D:R:E:")) != -1) {
		switch (ch) {
		case 'l': p.lmtp = 1; break;
		case '8': proto.body = "8BITMIME"; break;
		case 'U': proto.smtputf8 = 1; break;
		case 'v': verbose = 1; break;
		case 'V': verify = 1; break;
		case 't': p.tls = drive_tls_mode(optarg); break;
		case 'C': cafile = optarg; break;
		case 'N': p.peer_name = optarg; break;
		case 'u': p.auth_user = optarg; break;
		case 'p': p.auth_pass = optarg; break;
		case 'T': timeout = (unsigned)drive_num(optarg); break;
		case 'n': d.nmsgs = (unsigned)drive_num(optarg); break;
		case 'O': off = drive_num(optarg); break;
		case 'f': proto.sender = optarg; break;
		case 'D': notify = optarg; break;
		case 'R': proto.ret = optarg; break;
		case 'E': proto.envid = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 4)
		usage();
	log_init("client_drive", 1, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);	/* as sluiced does; the client needs it */
	if (getaddrinfo(argv[0], argv[1], &hints, &ai) != 0)
		fatalx("bad address %s port %s", argv[0], argv[1]);
	if ((proto.fd = open(argv[2], O_RDONLY)) == -1 ||
	    fstat(proto.fd, &st) == -1 || (uint64_t)st.st_size < off)
		fatalx("cannot use %s", argv[2]);
	proto.off = off;
	proto.len = (uint64_t)st.st_size - off;
	p.connect_timeout = p.greeting_timeout = p.command_timeout = timeout;
	p.data_timeout = p.done_timeout = timeout;
	if (p.tls != CLIENT_TLS_NONE)
		p.ssl_ctx = drive_ssl_ctx(cafile, verify);

	proto.nrcpts = (unsigned)(argc - 3);
	drive_msgs(&d, &proto, argv + 3, notify);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	smtp_client_connect(d.base, ai->ai_addr, ai->ai_addrlen, &p, &cbs, &d);
	event_base_dispatch(d.base);

	for (i = 0; i < d.nmsgs; i++)
		free(d.msgs[i].rcpts);
	free(d.msgs);
	freeaddrinfo(ai);
	close(proto.fd);
	SSL_CTX_free(p.ssl_ctx);
	event_base_free(d.base);
	return 0;
}
