/*
 * HTTPS for botid-ca (ca-http.h). libevent caps the header and body sizes
 * (a larger body gets 413 before it is read), times out idle and slow
 * clients, and allows only GET and POST; each complete request goes to
 * ca_api_handle() in the one event loop thread, so the database is never
 * used from two threads.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "ca/ca-http.h"
#include "ca/ca-issue.h"
#include "lib/botid.h"
#include "lib/file.h"
#include "lib/log.h"

#define HTTP_TIMEOUT		10	/* seconds per request */
#define HTTP_HEADERS_MAX	16384

struct server {
	struct ca_api	*api;
	SSL_CTX		*tls;
};

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct server *s = arg;
	SSL *ssl = SSL_new(s->tls);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
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
	default:		method = "OTHER"; break;
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
	    evbuffer_add(out, answer, strlen(answer)) != 0) {
		evhttp_send_error(req, 500, "out of memory");
		goto out;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", ctype);
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
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
	struct server s;
	char pbuf[16];
	unsigned real_port = port;
	int r = BOTID_ERR_ALLOC;

	memset(&s, 0, sizeof(s));
	s.api = api;
	signal(SIGPIPE, SIG_IGN);
	if ((r = ca_tls_context(api->signer, host, &s.tls)) != 0) {
		log_err("ca: cannot set up TLS");
		goto out;
	}
	r = BOTID_ERR_ALLOC;
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL)
		goto out;
	evhttp_set_bevcb(http, tls_bev, &s);
	evhttp_set_max_body_size(http, CA_BODY_MAX);
	evhttp_set_max_headers_size(http, HTTP_HEADERS_MAX);
	evhttp_set_timeout(http, HTTP_TIMEOUT);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(http, on_request, &s);
	if ((bound = evhttp_bind_socket_with_handle(http, host,
	    (ev_uint16_t)port)) == NULL) {
		log_err("ca: cannot listen on %s:%u: %s", host, port,
		    strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
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
	log_info("ca: serving https://%s:%u/ (trust domain %s)", host,
	    real_port, api->cfg->trust_domain);
	r = event_base_dispatch(base) == -1 ? BOTID_ERR_INTERNAL : 0;
 out:
	if (sterm != NULL)
		event_free(sterm);
	if (sint != NULL)
		event_free(sint);
	if (http != NULL)
		evhttp_free(http);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(s.tls);
	return r;
}
