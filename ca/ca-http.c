/*
 * HTTPS for botid-ca (ca-http.h). libevent caps the header and body sizes
 * (a larger body gets 413 before it is read); GET and POST go to
 * ca_api_handle() in the one event loop thread, so the database is never
 * used from two threads, and other methods get 405. This file also keeps
 * slow and numerous clients from taking the CA down: each connection evhttp
 * accepts is counted against a global and a per-address cap and closed
 * when over one, each request has one deadline for all its bytes (evhttp's
 * timeout is per read, so a byte every few seconds would keep a connection
 * for ever), the listener backs off when accept() fails, and the lines
 * these refusals log are rate-limited.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "ca/ca-http.h"
#include "ca/ca-issue.h"
#include "lib/botid.h"
#include "lib/file.h"
#include "lib/log.h"

/* Seconds evhttp waits for one read (the whole request: request_timeout). */
#define HTTP_IDLE_TIMEOUT	10
#define HTTP_HEADERS_MAX	16384
/* Descriptors kept for the database, the logs and the CA key. */
#define HTTP_FD_RESERVE		64
/* Buckets of the per-address counters' hash. */
#define HTTP_ADDR_BUCKETS	1024
/* The listener's pause after accept() failed. */
#define HTTP_ACCEPT_BACKOFF_MS	200

/* At most one line a second of each kind; the next one says how many went. */
struct log_limit {
	time_t		 second;
	unsigned long	 dropped;
};

/* Open connections from one client address. */
struct addr_count {
	struct addr_count	*next;
	int			 family;
	uint8_t			 addr[16];
	unsigned long		 count;
};

struct server {
	struct ca_api		*api;
	SSL_CTX			*tls;
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*resume;	/* re-enables listener */
	int			 paused;
	/* nadmit: connections counted in (refused ones are not) */
	unsigned long		 nadmit, max_conn, max_per_addr;
	struct timeval		 deadline;
	struct addr_count	*buckets[HTTP_ADDR_BUCKETS];
	struct log_limit	 log_full, log_addr, log_accept, log_slow;
};

/* One accepted connection; it lives exactly as long as its SSL object. */
struct conn {
	struct server		*s;
	struct addr_count	*ac;		/* NULL until counted */
	struct bufferevent	*bev;
	struct event		*deadline;
	evutil_socket_t		 fd;
	int			 started;
};

static int conn_index = -1;	/* SSL ex_data slot of struct conn */
/*
 * The listener's error callback gets evhttp's argument, not ours: the one
 * server of the process is found here.
 */
static struct server *the_server;

static void
log_limited(struct log_limit *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
log_limited(struct log_limit *l, const char *fmt, ...)
{
	struct timespec ts;
	char msg[256];
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec == l->second) {
		l->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->dropped > 0)
		log_warn("%s (and %lu more like it)", msg, l->dropped);
	else
		log_warn("%s", msg);
	l->second = ts.tv_sec;
	l->dropped = 0;
}

/*
 * The client part of sa as a hash key; 0 if the family is unknown. An IPv6
 * client is its /64: one host usually has a whole /64 to pick from.
 */
static int
addr_key(const struct sockaddr *sa, int *family, uint8_t key[16])
{
	memset(key, 0, 16);
	*family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
		return 1;
	}
	return 0;
}

static unsigned
addr_hash(int family, const uint8_t key[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % HTTP_ADDR_BUCKETS;
}

/* The counter of an address, made at zero if absent (NULL: no memory). */
static struct addr_count *
addr_get(struct server *s, int family, const uint8_t key[16])
{
	unsigned h = addr_hash(family, key);
	struct addr_count *a;

	for (a = s->buckets[h]; a != NULL; a = a->next)
		if (a->family == family && memcmp(a->addr, key, 16) == 0)
			return a;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->family = family;
	memcpy(a->addr, key, 16);
	a->next = s->buckets[h];
	s->buckets[h] = a;
	return a;
}

static void
addr_put(struct server *s, struct addr_count *a)
{
	struct addr_count **pp;

	if (a == NULL || --a->count > 0)
		return;
	for (pp = &s->buckets[addr_hash(a->family, a->addr)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	free(a);
}

static void
listener_resume(struct server *s)
{
	if (!s->paused || s->listener == NULL)
		return;
	s->paused = 0;
	evtimer_del(s->resume);
	if (evconnlistener_enable(s->listener) != 0)
		log_err("ca: cannot re-enable the listener");
}

/*
 * OpenSSL calls this when a connection's SSL object is freed, which
 * bufferevent_openssl does exactly when the connection is gone (whatever
 * closed it: the peer, evhttp's timeout, our deadline, shutdown): the one
 * place that gives back the connection's slots.
 */
static void
conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct conn *c = ptr;

	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	if (c == NULL)
		return;
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->ac != NULL)
		c->s->nadmit--;
	addr_put(c->s, c->ac);
	/* A descriptor came free: accept() may succeed again. */
	listener_resume(c->s);
	free(c);
}

/*
 * A connection's timer. First it fires at once, right after evhttp gave
 * the connection its socket: the connection is counted against the caps
 * (evhttp accepts by itself and tells us nothing earlier but tls_bev(),
 * before the socket is known), and closed when over one. Then it is the
 * deadline for the whole request (TLS handshake, headers, body, and the
 * answer written to the socket: reply_written()). Closing is a
 * shutdown(): the bufferevent sees the end of the stream and evhttp frees
 * the connection by its ordinary path, and with it conn.
 */
static void
on_conn_timer(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addr_count *ac;
	uint8_t key[16];
	char name[INET6_ADDRSTRLEN] = "?";
	int family, one = 1;

	(void)unused;
	(void)what;
	if ((c->fd = bufferevent_getfd(c->bev)) < 0)
		return;
	if (c->started) {
		log_limited(&s->log_slow, "ca: a request took longer than "
		    "%ld s; closing its connection", (long)s->deadline.tv_sec);
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	c->started = 1;
	/*
	 * The address's cap first, then the global one, which counts only
	 * connections let in: a flood from a few addresses, refused by their
	 * cap, is never what keeps another client out.
	 */
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    !addr_key((struct sockaddr *)&ss, &family, key) ||
	    (ac = addr_get(s, family, key)) == NULL) {
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	if (ac->count >= s->max_per_addr) {
		inet_ntop(family, key, name, sizeof(name));
		log_limited(&s->log_addr, "ca: connection from %s refused: "
		    "%lu open (max_connections_per_address)", name, ac->count);
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	if (s->nadmit >= s->max_conn) {
		log_limited(&s->log_full, "ca: connection refused: %lu "
		    "connections open (max_connections)", s->nadmit);
		/* Drops the counter addr_get() may have just made. */
		ac->count++;
		addr_put(s, ac);
		shutdown(c->fd, SHUT_RDWR);
		return;
	}
	ac->count++;
	c->ac = ac;
	s->nadmit++;
	/* Answers go out at once, not after the peer's delayed ACK. */
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) != 0)
		log_debug("ca: TCP_NODELAY: %s", strerror(errno));
	if (evtimer_add(c->deadline, &s->deadline) != 0)
		shutdown(c->fd, SHUT_RDWR);
}

/*
 * evhttp's hook for a new connection's bufferevent: a TLS one, with the
 * struct conn that counts it hung on its SSL object.
 */
static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct server *s = arg;
	struct bufferevent *bev = NULL;
	struct conn *c = NULL;
	SSL *ssl;

	if ((ssl = SSL_new(s->tls)) == NULL)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->deadline = evtimer_new(base, on_conn_timer, c)) == NULL ||
	    SSL_set_ex_data(ssl, conn_index, c) != 1) {
		/* Served uncounted rather than in plain text. */
		if (c != NULL && c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		c = NULL;
		log_limited(&s->log_accept, "ca: a connection is not counted: "
		    "out of memory");
	} else {
		c->s = s;
		c->fd = -1;
	}
	/* From here on the SSL object owns c (conn_free()). */
	if ((bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	if (c != NULL) {
		c->bev = bev;
		if (evtimer_add(c->deadline, &now) != 0)
			log_err("ca: cannot count a connection");
	}
	return bev;
}

/*
 * accept() failed with something libevent does not retry by itself (at
 * the descriptor limit: EMFILE, ENFILE; or ENOBUFS, ENOMEM). The listening
 * socket stays readable, so without a pause the loop would spin on it:
 * pause until a connection closes or HTTP_ACCEPT_BACKOFF_MS passed.
 */
static void
on_accept_error(struct evconnlistener *lev, void *unused)
{
	struct server *s = the_server;
	struct timeval tv = { 0, HTTP_ACCEPT_BACKOFF_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)unused;
	log_limited(&s->log_accept, "ca: accept: %s; pausing new connections",
	    strerror(err));
	if (s->paused)
		return;
	if (evconnlistener_disable(lev) != 0 ||
	    evtimer_add(s->resume, &tv) != 0) {
		log_err("ca: cannot pause the listener");
		return;
	}
	s->paused = 1;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listener_resume(arg);
}

/*
 * After an answer is queued: the headers and the body are two chains of
 * the output buffer, which bufferevent_openssl would send as two TLS
 * records (two segments); joined, they go out as one.
 */
static void
reply_sent(struct evhttp_connection *evcon)
{
	struct bufferevent *bev;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	(void)evbuffer_pullup(bufferevent_get_output(bev), -1);
}

/*
 * evhttp has written the whole answer to the socket: the connection's
 * deadline starts again for the next request on it. Not when the answer
 * was queued: a client that does not read it would then keep the
 * connection for a second request_timeout, the answer still unsent.
 */
static void
reply_written(struct evhttp_request *req, void *unused)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct conn *c;
	SSL *ssl;

	(void)unused;
	if ((evcon = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return;
	if ((ssl = bufferevent_openssl_get_ssl(bev)) != NULL &&
	    (c = SSL_get_ex_data(ssl, conn_index)) != NULL && c->started &&
	    evtimer_add(c->deadline, &c->s->deadline) != 0)
		shutdown(c->fd, SHUT_RDWR);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evbuffer *out = NULL;
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *method, *path, *ctype = NULL;
	char *addr = NULL, peer[80], *body = NULL, *answer = NULL;
	uint16_t port = 0;
	size_t len;
	int status;

	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET:	method = "GET"; break;
	case EVHTTP_REQ_POST:	method = "POST"; break;
	default:
		/* evhttp would answer another method 501, a 5xx. */
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, POST");
		evhttp_send_error(req, 405, "use GET or POST");
		return;
	}
	if (conn != NULL)
		evhttp_connection_get_peer(conn, &addr, &port);
	snprintf(peer, sizeof(peer), "%s:%u", addr != NULL ? addr : "?",
	    (unsigned)port);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	len = evbuffer_get_length(in);
	if (len > CA_BODY_MAX) {
		evhttp_send_error(req, 413, "body too large");
		return;
	}
	if ((body = malloc(len + 1)) == NULL ||
	    evbuffer_remove(in, body, len) != (int)len) {
		evhttp_send_error(req, 500, "out of memory");
		free(body);
		return;
	}
	body[len] = '\0';
	status = ca_api_handle(s->api, method, path != NULL ? path : "",
	    body, len, peer, &answer, &ctype);
	free(body);
	if ((out = evbuffer_new()) == NULL ||
	    evbuffer_add(out, answer, s->api->body_len > 0 ?
	    s->api->body_len : strlen(answer)) != 0) {
		evhttp_send_error(req, 500, "out of memory");
		goto out;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", ctype);
	if (s->api->retry_after > 0) {
		char wait[16];

		snprintf(wait, sizeof(wait), "%u", s->api->retry_after);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", wait);
	}
	evhttp_request_set_on_complete_cb(req, reply_written, NULL);
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
	reply_sent(conn);
 out:
	evbuffer_free(out);
	free(answer);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("ca: signal %d: exiting", (int)sig);
	event_base_loopexit(arg, NULL);
}

/*
 * The connection cap: max_connections, but never so many that accept()
 * or the database would run out of descriptors.
 */
static unsigned long
conn_cap(long configured)
{
	struct rlimit rl;
	unsigned long cap = (unsigned long)configured;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		if (rl.rlim_cur <= HTTP_FD_RESERVE + 1)
			cap = 1;
		else if (rl.rlim_cur - HTTP_FD_RESERVE < cap)
			cap = (unsigned long)(rl.rlim_cur - HTTP_FD_RESERVE);
	}
	return cap;
}

static void
addr_free_all(struct server *s)
{
	struct addr_count *a, *next;
	size_t i;

	for (i = 0; i < HTTP_ADDR_BUCKETS; i++)
		for (a = s->buckets[i]; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
}

int
ca_http_serve(struct ca_api *api, const char *host, unsigned port,
    const char *port_file)
{
	struct event_base *base = NULL;
	struct evhttp *http = NULL;
	struct evhttp_bound_socket *bound;
	struct event *sterm = NULL, *sint = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct server *s = NULL;
	char pbuf[16];
	unsigned real_port = port;
	int r = BOTID_ERR_ALLOC;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->api = api;
	s->max_conn = conn_cap(api->cfg->max_connections);
	s->max_per_addr = (unsigned long)api->cfg->max_connections_per_address;
	s->deadline.tv_sec = api->cfg->request_timeout;
	signal(SIGPIPE, SIG_IGN);
	if (conn_index < 0 && (conn_index = CRYPTO_get_ex_new_index(
	    CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, conn_free)) < 0)
		goto out;
	if ((r = ca_tls_context(api->signer, host, &s->tls)) != 0) {
		log_err("ca: cannot set up TLS");
		goto out;
	}
	/* A client cannot make the CA redo a handshake's work at will. */
	SSL_CTX_set_options(s->tls, SSL_OP_NO_RENEGOTIATION);
	r = BOTID_ERR_ALLOC;
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL ||
	    (s->resume = evtimer_new(base, on_resume, s)) == NULL)
		goto out;
	s->base = base;
	s->http = http;
	evhttp_set_bevcb(http, tls_bev, s);
	evhttp_set_max_body_size(http, CA_BODY_MAX);
	evhttp_set_max_headers_size(http, HTTP_HEADERS_MAX);
	evhttp_set_timeout(http, HTTP_IDLE_TIMEOUT);
	/* Every method reaches on_request(), which refuses all but two. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(http, on_request, s);
	if ((bound = evhttp_bind_socket_with_handle(http, host,
	    (ev_uint16_t)port)) == NULL) {
		log_err("ca: cannot listen on %s:%u: %s", host, port,
		    strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	s->listener = evhttp_bound_socket_get_listener(bound);
	the_server = s;
	evconnlistener_set_error_cb(s->listener, on_accept_error);
	if (getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&ss, &sl) == 0)
		real_port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	if (port_file != NULL) {
		snprintf(pbuf, sizeof(pbuf), "%u\n", real_port);
		if (file_write_atomic(port_file, pbuf, strlen(pbuf),
		    0644) != 0) {
			r = BOTID_ERR_IO;
			goto out;
		}
	}
	if ((sterm = evsignal_new(base, SIGTERM, on_signal, base)) == NULL ||
	    (sint = evsignal_new(base, SIGINT, on_signal, base)) == NULL ||
	    event_add(sterm, NULL) != 0 || event_add(sint, NULL) != 0)
		goto out;
	/* Discovery names the JWK Set by the URL clients reach us at. */
	if (api->cfg->public_url != NULL)
		snprintf(api->base_url, sizeof(api->base_url), "%s",
		    api->cfg->public_url);
	else
		snprintf(api->base_url, sizeof(api->base_url), "https://%s:%u",
		    host, real_port);
	log_info("ca: serving https://%s:%u/ (trust domain %s; at most %lu "
	    "connections, %lu per address, %ld s per request)", host,
	    real_port, api->cfg->trust_domain, s->max_conn, s->max_per_addr,
	    (long)s->deadline.tv_sec);
	r = event_base_dispatch(base) == -1 ? BOTID_ERR_INTERNAL : 0;
 out:
	if (sterm != NULL)
		event_free(sterm);
	if (sint != NULL)
		event_free(sint);
	/*
	 * evhttp_free() frees the listener before the connections, whose
	 * conn_free() must then leave both alone.
	 */
	the_server = NULL;
	if (s != NULL) {
		s->listener = NULL;
		s->paused = 0;
	}
	if (http != NULL)
		evhttp_free(http);
	if (s != NULL && s->resume != NULL)
		event_free(s->resume);
	if (base != NULL)
		event_base_free(base);
	if (s != NULL) {
		SSL_CTX_free(s->tls);
		addr_free_all(s);
	}
	free(s);
	return r;
}
