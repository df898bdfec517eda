/*
 * inventory: the receiving bot of the botid examples (C). It serves a tiny
 * inventory over HTTPS with mutual TLS. Its TLS key is its bot key, used
 * through the PKCS#11 module botid-pkcs11.so by libp11, so the private key
 * stays in the agent's TPM or token; its certificate chain comes from the
 * agent. A caller must present a certificate chaining to the CA bundle, and
 * a bot JWT (Authorization: Bearer) that botid_verify_jwt() accepts for
 * audience "inventory" with the scope the request needs (GET
 * inventory:read, POST inventory:write) and whose subject is the SPIFFE ID
 * of that TLS client certificate: a token is of no use without its bot's
 * key. Every response is signed with botid_sign_msg() (X-Botid-Signature).
 * With --jwks URL (botid-ca's /.well-known/jwks.json) and --issuer, it also
 * requires the token's key to be in botid-ca's JWK Set, fetched for every
 * request (botid_verify_jwt_jwks()): a revoked bot's tokens stop working at
 * once. A busier service would cache the set for a few seconds.
 *
 *   inventory --bot NAME --bundle CA.pem --module botid-pkcs11.so
 *       [--jwks URL --issuer ISS] [--socket PATH] [--port PORT]
 *       [--port-file FILE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libp11.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "botid.h"

#define MAX_BODY	4096
#define MAX_ITEMS	16
#define MAX_CHAIN	8
#define CHAIN_REFRESH	20	/* seconds between fetches of our own chain */
#define MAX_JWKS	(1024 * 1024)

struct item {
	char	name[33];
	long	count;
};

struct inventory {
	const char		*bot;
	const char		*bundle;
	const char		*jwks;		/* URL, or NULL */
	const char		*issuer;
	struct botid_client	*agent;
	SSL_CTX			*tls;
	time_t			 chain_at;
	struct item		 items[MAX_ITEMS];
	size_t			 nitems;
};

/* Installs the bot's current chain (the agent renews it) in the context. */
static int
chain_refresh(struct inventory *inv)
{
	struct botid_blob *chain = NULL;
	const unsigned char *p;
	X509 *x = NULL;
	size_t n = 0, i;
	int r, rc = -1;

	if ((r = botid_cert_chain(inv->agent, inv->bot, &chain, &n)) != 0) {
		fprintf(stderr, "inventory: no certificate for %s: %s\n",
		    inv->bot, botid_strerror(r));
		goto out;
	}
	if (n == 0 || n > MAX_CHAIN)
		goto out;
	SSL_CTX_clear_chain_certs(inv->tls);
	for (i = 0; i < n; i++) {
		p = chain[i].data;
		if ((x = d2i_X509(NULL, &p, (long)chain[i].len)) == NULL)
			goto out;
		if (i == 0 ? SSL_CTX_use_certificate(inv->tls, x) != 1 :
		    SSL_CTX_add1_chain_cert(inv->tls, x) != 1)
			goto out;
		X509_free(x);
		x = NULL;
	}
	inv->chain_at = time(NULL);
	rc = 0;
 out:
	X509_free(x);
	botid_blobs_free(chain, n);
	return rc;
}

/*
 * The private key object labelled bot in the module's token, via libp11.
 * The key refers to libp11's slot list, which lives until unload.
 */
static EVP_PKEY *
module_key(PKCS11_CTX *p11, const char *module, const char *bot,
    PKCS11_SLOT **slotsp, unsigned int *nslotsp)
{
	PKCS11_SLOT *slots = NULL, *slot;
	PKCS11_KEY *keys;
	unsigned int nslots = 0, nkeys, i;
	EVP_PKEY *pkey = NULL;

	if (PKCS11_CTX_load(p11, module) != 0) {
		fprintf(stderr, "inventory: cannot load %s\n", module);
		return NULL;
	}
	if (PKCS11_enumerate_slots(p11, &slots, &nslots) != 0 ||
	    (slot = PKCS11_find_token(p11, slots, nslots)) == NULL ||
	    PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
		goto out;
	for (i = 0; i < nkeys; i++)
		if (keys[i].label != NULL && strcmp(keys[i].label, bot) == 0) {
			pkey = PKCS11_get_private_key(&keys[i]);
			break;
		}
 out:
	if (pkey == NULL)
		fprintf(stderr, "inventory: %s offers no key for bot %s\n",
		    module, bot);
	*slotsp = slots;
	*nslotsp = nslots;
	return pkey;
}

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
	struct inventory *inv = arg;
	SSL *ssl;

	if (time(NULL) - inv->chain_at >= CHAIN_REFRESH)
		(void)chain_refresh(inv);	/* keeps the old one on failure */
	if ((ssl = SSL_new(inv->tls)) == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* Sends obj as a signed JSON response and logs the outcome. */
static void
reply(struct inventory *inv, struct evhttp_request *req, int code,
    json_t *obj)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	char *body = NULL, *sig = NULL, clen[24];
	size_t len;

	if (out == NULL || (body = json_dumps(obj, JSON_SORT_KEYS)) == NULL)
		goto fail;
	len = strlen(body);
	if (botid_sign_msg(inv->agent, inv->bot, body, len, &sig) != 0) {
		fprintf(stderr, "inventory: cannot sign: %s\n",
		    botid_message(inv->agent));
		goto fail;
	}
	/* Always sent: it is how a client knows the answer is whole. */
	snprintf(clen, sizeof(clen), "%zu", len);
	evhttp_add_header(h, "Content-Length", clen);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "X-Botid-Signature", sig);
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Refused", out);
	goto done;
 fail:
	evhttp_send_error(req, 500, "Internal Server Error");
 done:
	botid_free(sig);
	free(body);
	if (out != NULL)
		evbuffer_free(out);
	json_decref(obj);
}

/* The SPIFFE ID of the TLS client, checked against the bundle again. */
static char *
client_spiffe(struct inventory *inv, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct botid_blob chain[MAX_CHAIN];
	struct botid_verify_opts vo;
	struct botid_verified *v = NULL;
	STACK_OF(X509) *rest;
	unsigned char *der[MAX_CHAIN];
	X509 *leaf = NULL;
	SSL *ssl;
	char err[256], *id = NULL;
	size_t n = 0, i;
	int len;

	if (conn == NULL || (ssl = bufferevent_openssl_get_ssl(
	    evhttp_connection_get_bufferevent(conn))) == NULL ||
	    (leaf = SSL_get1_peer_certificate(ssl)) == NULL)
		return NULL;
	/* On a server the peer chain lacks the leaf. */
	rest = SSL_get_peer_cert_chain(ssl);
	der[n] = NULL;
	if ((len = i2d_X509(leaf, &der[n])) <= 0)
		goto out;
	chain[n].data = der[n];
	chain[n++].len = (size_t)len;
	for (i = 0; rest != NULL && i < (size_t)sk_X509_num(rest) &&
	    n < MAX_CHAIN; i++) {
		der[n] = NULL;
		if ((len = i2d_X509(sk_X509_value(rest, (int)i), &der[n])) <= 0)
			goto out;
		chain[n].data = der[n];
		chain[n++].len = (size_t)len;
	}
	memset(&vo, 0, sizeof(vo));
	vo.bundle = inv->bundle;
	vo.leeway = BOTID_DEFAULT_LEEWAY;
	if (botid_verify_cert(&vo, chain, n, &v, err, sizeof(err)) != 0) {
		fprintf(stderr, "inventory: client certificate: %s\n", err);
		goto out;
	}
	id = strdup(v->spiffe_id);
 out:
	for (i = 0; i < n; i++)
		OPENSSL_free(der[i]);
	botid_verified_free(v);
	X509_free(leaf);
	return id;
}

static struct item *
item_find(struct inventory *inv, const char *name, int create)
{
	size_t i;

	for (i = 0; i < inv->nitems; i++)
		if (strcmp(inv->items[i].name, name) == 0)
			return &inv->items[i];
	if (!create || inv->nitems == MAX_ITEMS ||
	    strlen(name) >= sizeof(inv->items[0].name))
		return NULL;
	snprintf(inv->items[inv->nitems].name, sizeof(inv->items[0].name),
	    "%s", name);
	inv->items[inv->nitems].count = 0;
	return &inv->items[inv->nitems++];
}

/* Applies {"item": NAME, "count": N} from the body; the reply object. */
static json_t *
items_add(struct inventory *inv, struct evhttp_request *req, int *code)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	char body[MAX_BODY + 1];
	json_error_t jerr;
	json_t *req_json = NULL, *res = NULL;
	const char *name;
	struct item *it;
	json_int_t count;
	size_t len = evbuffer_get_length(in);

	*code = 400;
	if (len > MAX_BODY) {
		res = json_pack("{s:s}", "error", "body too large");
		goto out;
	}
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	if ((req_json = json_loadb(body, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || json_unpack_ex(req_json, &jerr, JSON_STRICT,
	    "{s:s, s:I}", "item", &name, "count", &count) != 0 ||
	    count < -1000000 || count > 1000000) {
		res = json_pack("{s:s}", "error", "bad request: want "
		    "{\"item\": NAME, \"count\": N}");
		goto out;
	}
	if ((it = item_find(inv, name, 1)) == NULL) {
		res = json_pack("{s:s}", "error", "no room for that item");
		goto out;
	}
	it->count += (long)count;
	*code = 200;
	res = json_pack("{s:s, s:I}", "item", it->name, "count",
	    (json_int_t)it->count);
 out:
	json_decref(req_json);
	return res;
}

struct body {
	char	*data;
	size_t	 len;
};

static size_t
jwks_write(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *d;

	if (n != 0 && size > MAX_JWKS / n)
		return 0;
	n *= size;
	if (n > MAX_JWKS - b->len || (d = realloc(b->data, b->len + n + 1)) ==
	    NULL)
		return 0;	/* too large: curl fails the transfer */
	memcpy(d + b->len, p, n);
	b->len += n;
	d[b->len] = '\0';
	b->data = d;
	return n;
}

/* botid-ca's JWK Set now, over HTTPS checked against the CA bundle. */
static int
jwks_fetch(struct inventory *inv, struct body *b)
{
	CURL *c;
	long code = 0;
	int ok;

	memset(b, 0, sizeof(*b));
	if ((c = curl_easy_init()) == NULL)
		return -1;
	ok = curl_easy_setopt(c, CURLOPT_URL, inv->jwks) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_CAINFO, inv->bundle) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L) == CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, jwks_write) ==
	    CURLE_OK &&
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, b) == CURLE_OK &&
	    curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    code == 200 && b->data != NULL;
	curl_easy_cleanup(c);
	if (!ok) {
		free(b->data);
		b->data = NULL;
		return -1;
	}
	return 0;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct inventory *inv = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *auth, *scope, *scopes[1];
	struct botid_verify_opts vo;
	struct botid_verified *v = NULL;
	struct body jwks = { NULL, 0 };
	char err[256], *caller = NULL;
	json_t *res = NULL, *items;
	size_t i;
	int code = 403;

	if (strcmp(evhttp_request_get_uri(req), "/items") != 0 ||
	    (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST)) {
		evhttp_send_error(req, 404, "Not Found");
		return;
	}
	scope = cmd == EVHTTP_REQ_GET ? "inventory:read" : "inventory:write";
	if ((caller = client_spiffe(inv, req)) == NULL) {
		snprintf(err, sizeof(err), "no acceptable client certificate");
		goto refuse;
	}
	auth = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
		snprintf(err, sizeof(err), "no bearer token");
		goto refuse;
	}
	memset(&vo, 0, sizeof(vo));
	vo.bundle = inv->bundle;
	vo.audience = "inventory";
	scopes[0] = scope;
	vo.scopes = scopes;
	vo.nscopes = 1;
	vo.spiffe_id = caller;	/* the token's bot is the TLS client */
	vo.leeway = BOTID_DEFAULT_LEEWAY;
	vo.issuer = inv->issuer;
	if (inv->jwks != NULL) {
		if (jwks_fetch(inv, &jwks) != 0) {
			snprintf(err, sizeof(err), "cannot fetch the JWK Set");
			goto refuse;
		}
		if (botid_verify_jwt_jwks(&vo, jwks.data, jwks.len, auth + 7,
		    &v, err, sizeof(err)) != 0)
			goto refuse;
	} else if (botid_verify_jwt(&vo, auth + 7, &v, err, sizeof(err)) != 0)
		goto refuse;
	if (cmd == EVHTTP_REQ_GET) {
		code = 200;
		if ((items = json_object()) != NULL)
			for (i = 0; i < inv->nitems; i++)
				json_object_set_new(items, inv->items[i].name,
				    json_integer(inv->items[i].count));
		res = json_pack("{s:s, s:o}", "caller", caller, "items",
		    items);
	} else
		res = items_add(inv, req, &code);
	fprintf(stderr, "inventory: %s by %s: %d\n",
	    cmd == EVHTTP_REQ_GET ? "read" : "write", caller, code);
	goto send;
 refuse:
	fprintf(stderr, "inventory: refused %s: %s\n",
	    caller != NULL ? caller : "a client", err);
	res = json_pack("{s:s, s:s, s:s}", "error", "forbidden", "needs",
	    scope, "reason", err);
 send:
	if (res == NULL)
		evhttp_send_error(req, 500, "Internal Server Error");
	else
		reply(inv, req, code, res);
	botid_verified_free(v);
	free(jwks.data);
	free(caller);
}

static void
usage(void)
{
	fprintf(stderr, "usage: inventory --bot NAME --bundle CA.pem "
	    "--module botid-pkcs11.so\n"
	    "           [--jwks URL --issuer ISS] [--socket PATH] [--port PORT]\n"
	    "           [--port-file FILE]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bot", required_argument, NULL, 'b' },
		{ "bundle", required_argument, NULL, 'B' },
		{ "module", required_argument, NULL, 'm' },
		{ "socket", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "jwks", required_argument, NULL, 'j' },
		{ "issuer", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct inventory inv;
	struct event_base *base = NULL;
	struct evhttp *http = NULL;
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	PKCS11_CTX *p11 = NULL;
	PKCS11_SLOT *slots = NULL;
	unsigned int nslots = 0;
	EVP_PKEY *pkey = NULL;
	char tmp[4096];
	const char *module = NULL, *sock = NULL, *port_file = NULL;
	FILE *f;
	int ch, port = 0, rc = 1;

	memset(&inv, 0, sizeof(inv));
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': inv.bot = optarg; break;
		case 'B': inv.bundle = optarg; break;
		case 'm': module = optarg; break;
		case 's': sock = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'P': port_file = optarg; break;
		case 'j': inv.jwks = optarg; break;
		case 'i': inv.issuer = optarg; break;
		default:
			usage();
			return 2;
		}
	}
	if (inv.bot == NULL || inv.bundle == NULL || module == NULL ||
	    optind != argc || port < 0 || port > 65535 ||
	    (inv.jwks == NULL) != (inv.issuer == NULL)) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out;
	/* The module finds the agent the way libbotid does. */
	if (sock != NULL && setenv("BOTID_SOCKET", sock, 1) != 0)
		goto out;
	snprintf(inv.items[0].name, sizeof(inv.items[0].name), "widget");
	inv.items[0].count = 12;
	snprintf(inv.items[1].name, sizeof(inv.items[1].name), "gear");
	inv.items[1].count = 3;
	inv.nitems = 2;

	if (botid_connect(sock, &inv.agent) != 0) {
		fprintf(stderr, "inventory: cannot reach the agent\n");
		goto out;
	}
	if ((p11 = PKCS11_CTX_new()) == NULL ||
	    (pkey = module_key(p11, module, inv.bot, &slots, &nslots)) == NULL)
		goto out;
	if ((inv.tls = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(inv.tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(inv.tls, inv.bundle, NULL) != 1 ||
	    chain_refresh(&inv) != 0 ||
	    SSL_CTX_use_PrivateKey(inv.tls, pkey) != 1 ||
	    SSL_CTX_check_private_key(inv.tls) != 1) {
		fprintf(stderr, "inventory: TLS setup failed: %s\n",
		    ERR_reason_error_string(ERR_get_error()));
		goto out;
	}
	SSL_CTX_set_verify(inv.tls, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if ((base = event_base_new()) == NULL ||
	    (http = evhttp_new(base)) == NULL)
		goto out;
	evhttp_set_bevcb(http, tls_bev, &inv);
	evhttp_set_max_body_size(http, MAX_BODY);
	evhttp_set_timeout(http, 10);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(http, on_request, &inv);
	if ((bound = evhttp_bind_socket_with_handle(http, "127.0.0.1",
	    (ev_uint16_t)port)) == NULL ||
	    getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sa, &salen) == -1) {
		fprintf(stderr, "inventory: cannot listen on port %d\n", port);
		goto out;
	}
	port = ntohs(sa.sin_port);
	if (port_file != NULL) {	/* written whole, for whoever waits */
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if ((f = fopen(tmp, "w")) == NULL)
			goto out;
		fprintf(f, "%d\n", port);
		if (fclose(f) != 0 || rename(tmp, port_file) != 0)
			goto out;
	}
	fprintf(stderr, "inventory: listening on https://127.0.0.1:%d\n", port);
	event_base_dispatch(base);
	rc = 0;
 out:
	if (http != NULL)
		evhttp_free(http);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(inv.tls);
	EVP_PKEY_free(pkey);
	if (slots != NULL)
		PKCS11_release_all_slots(p11, slots, nslots);
	if (p11 != NULL) {
		PKCS11_CTX_unload(p11);
		PKCS11_CTX_free(p11);
	}
	botid_close(inv.agent);
	return rc;
}
