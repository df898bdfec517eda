/*
 * chatty: the calling bot of the botid examples. It asks its agent for a
 * short JWT naming it, with only the scope it needs (inventory:read), calls
 * the inventory bot over HTTP with it as bearer token, and believes the
 * answer only if inventory's detached-payload signature over the body
 * verifies to the CA bundle (botid_verify_msg).
 *
 *   chatty --bot NAME --bundle CA.pem --port PORT [--socket PATH]
 *       [--scope S]... [--expect-spiffe ID] read | write ITEM COUNT
 *
 * Exit status: 0 ok, 1 failure, 2 usage, 3 refused by inventory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <botid.h>

#define MAX_RESPONSE	(64 * 1024)
#define MAX_SCOPES	8

/* One HTTP/1.0 exchange with 127.0.0.1:port; the response in *resp. */
static int
http_call(int port, const char *request, char **resp, size_t *len)
{
	struct sockaddr_in sa;
	size_t n = 0, off;
	ssize_t w;
	char *buf;
	int fd;

	*resp = NULL;
	if ((buf = malloc(MAX_RESPONSE + 1)) == NULL)
		return -1;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	for (off = 0; off < strlen(request); off += (size_t)w)
		if ((w = write(fd, request + off, strlen(request) - off)) <= 0)
			goto fail;
	while (n < MAX_RESPONSE &&
	    (w = read(fd, buf + n, MAX_RESPONSE - n)) > 0)
		n += (size_t)w;
	close(fd);
	buf[n] = '\0';
	*resp = buf;
	*len = n;
	return 0;
 fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return -1;
}

/* The value of header name in the head (NUL-terminated), or NULL. */
static char *
http_header(char *head, const char *name)
{
	char *line, *save = NULL, *v;

	for (line = strtok_r(head, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (strncasecmp(line, name, strlen(name)) == 0 &&
		    line[strlen(name)] == ':') {
			for (v = line + strlen(name) + 1; *v == ' '; v++)
				;
			return v;
		}
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: chatty --bot NAME --bundle CA.pem --port PORT "
	    "[--socket PATH]\n"
	    "           [--scope S]... [--expect-spiffe ID] "
	    "read | write ITEM COUNT\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bot", required_argument, NULL, 'b' },
		{ "bundle", required_argument, NULL, 'B' },
		{ "port", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "scope", required_argument, NULL, 'S' },
		{ "expect-spiffe", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bot = NULL, *sock = NULL, *scopes[MAX_SCOPES];
	struct botid_verify_opts vo;
	struct botid_verified *v = NULL;
	struct botid_client *c = NULL;
	char *jwt = NULL, *resp = NULL, *request = NULL, *body, *sig;
	char err[256], body_json[128];
	size_t nscopes = 0, len = 0;
	int ch, port = 0, code, r, rc = 1;

	memset(&vo, 0, sizeof(vo));
	vo.leeway = BOTID_DEFAULT_LEEWAY;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': bot = optarg; break;
		case 'B': vo.bundle = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 's': sock = optarg; break;
		case 'e': vo.spiffe_id = optarg; break;
		case 'S':
			if (nscopes == MAX_SCOPES) {
				usage();
				return 2;
			}
			scopes[nscopes++] = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (bot == NULL || vo.bundle == NULL || port <= 0 || port > 65535 ||
	    !((argc == 1 && strcmp(argv[0], "read") == 0) ||
	    (argc == 3 && strcmp(argv[0], "write") == 0))) {
		usage();
		return 2;
	}
	/* Least privilege: read is all chatty normally needs. */
	if (nscopes == 0)
		scopes[nscopes++] = "inventory:read";

	if ((r = botid_connect(sock, &c)) != 0) {
		fprintf(stderr, "chatty: agent: %s\n", botid_strerror(r));
		goto out;
	}
	if ((r = botid_jwt(c, bot, "inventory", scopes, nscopes, 60,
	    &jwt)) != 0) {
		fprintf(stderr, "chatty: no token: %s: %s\n", botid_strerror(r),
		    botid_message(c));
		goto out;
	}
	if (strcmp(argv[0], "read") == 0)
		r = asprintf(&request, "GET /items HTTP/1.0\r\n"
		    "Authorization: Bearer %s\r\n\r\n", jwt);
	else {
		snprintf(body_json, sizeof(body_json),
		    "{\"item\": \"%.32s\", \"count\": %d}", argv[1],
		    atoi(argv[2]));
		r = asprintf(&request, "POST /items HTTP/1.0\r\n"
		    "Authorization: Bearer %s\r\nContent-Type: application/json"
		    "\r\nContent-Length: %zu\r\n\r\n%s", jwt,
		    strlen(body_json), body_json);
	}
	if (r == -1) {
		request = NULL;
		goto out;
	}
	if (http_call(port, request, &resp, &len) != 0) {
		fprintf(stderr, "chatty: inventory: %s\n", strerror(errno));
		goto out;
	}
	if ((body = strstr(resp, "\r\n\r\n")) == NULL ||
	    sscanf(resp, "HTTP/%*s %d", &code) != 1) {
		fprintf(stderr, "chatty: inventory sent no HTTP response\n");
		goto out;
	}
	*body = '\0';
	body += 4;
	if ((sig = http_header(resp, "X-Botid-Signature")) == NULL) {
		fprintf(stderr, "chatty: the response is not signed\n");
		goto out;
	}
	if (botid_verify_msg(&vo, body, len - (size_t)(body - resp), sig, &v,
	    err, sizeof(err)) != 0) {
		fprintf(stderr, "chatty: the response signature is bad: %s\n",
		    err);
		goto out;
	}
	printf("%d from %s: %s", code, v->spiffe_id, body);
	rc = code == 200 ? 0 : 3;
 out:
	botid_verified_free(v);
	free(request);
	free(resp);
	botid_free(jwt);
	botid_close(c);
	return rc;
}
