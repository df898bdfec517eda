/*
 * botid-ca configuration parser: [ca], and [group NAME] sections holding
 * a host group's boot-state policy. Unknown keys and sections, repeated
 * single-valued keys and out-of-range numbers are errors with the line
 * number: a CA that silently ignores a typo in its policy is worse than
 * one that refuses to start.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "ca/ca-config.h"
#include "lib/botid.h"
#include "lib/limits.h"

#define DEFAULT_BOT_LIFETIME	3600
#define DEFAULT_HOST_LIFETIME	(30L * 86400)
#define DEFAULT_SESSION		300
#define DEFAULT_NONCE		60
#define DEFAULT_TOKEN_MAX_TTL	3600
#define DEFAULT_ANCHOR_HISTORY	1000	/* audit anchors kept per host */
#define MAX_ANCHOR_HISTORY	1000000
#define MAX_LIFETIME		(366L * 86400)
#define DEFAULT_NONCE_MAX	32
#define MAX_NONCE_MAX		10000
/*
 * Nonces per host and minute, after a burst: enough for an agent with
 * the most bots (BOTID_MAX_BOTS) to renew them all at once, then ten a
 * second; a host that asks faster gets 429 (doc/ca-api.md).
 */
#define DEFAULT_NONCE_RATE	600
#define MAX_NONCE_RATE		6000000
#define DEFAULT_NONCE_BURST	BOTID_MAX_BOTS
#define MAX_NONCE_BURST		1000000
#define DEFAULT_RETENTION	(7L * 86400)
#define DEFAULT_PURGE		3600
#define DEFAULT_RSA_MIN_BITS	2048
#define MIN_RSA_MIN_BITS	1024	/* the floor no configuration lowers */
#define MAX_RSA_MIN_BITS	16384
#define DEFAULT_MAX_CONNECTIONS	1024
#define DEFAULT_PER_ADDRESS	256
#define DEFAULT_REQUEST_TIMEOUT	10
#define MAX_CONNECTIONS_LIMIT	65536

struct parse {
	struct ca_config	*c;
	FILE			*f;
	int			 line;		/* the line inih has */
	char			*err;
	size_t			 errlen;
	int			 failed;
	char			 section[64];	/* of the key before */
};

static int
set_string(struct parse *p, int line, const char *name, char **dst,
    const char *value)
{
	if (*dst != NULL) {
		snprintf(p->err, p->errlen, "%s:%d: %s is set twice",
		    p->c->path, line, name);
		return 0;
	}
	if (*value == '\0') {
		snprintf(p->err, p->errlen, "%s:%d: %s is empty", p->c->path,
		    line, name);
		return 0;
	}
	if ((*dst = strdup(value)) == NULL) {
		snprintf(p->err, p->errlen, "out of memory");
		return 0;
	}
	return 1;
}

int
ca_duration_parse(const char *s, long min, long max, long *out)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*end == 's' || *end == 'm' || *end == 'h' || *end == 'd') {
		mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ?
		    3600 : 86400;
		end++;
	}
	if (errno != 0 || end == s || *end != '\0' || v < 0 ||
	    v > max / mult || v * mult < min)
		return BOTID_ERR_INVALID;
	*out = v * mult;
	return 0;
}

static int
set_seconds(struct parse *p, int line, const char *name, long *dst,
    const char *value, long min, long max)
{
	if (ca_duration_parse(value, min, max, dst) != 0) {
		snprintf(p->err, p->errlen, "%s:%d: %s must be a duration "
		    "from %ld to %ld seconds (e.g. 3600, 60m, 1h)", p->c->path,
		    line, name, min, max);
		return 0;
	}
	return 1;
}

static int
set_count(struct parse *p, int line, const char *name, long *dst,
    const char *value, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
		snprintf(p->err, p->errlen, "%s:%d: %s must be a number from "
		    "%ld to %ld", p->c->path, line, name, min, max);
		return 0;
	}
	*dst = v;
	return 1;
}

static int
set_listen(struct parse *p, int line, const char *value)
{
	const char *colon = strrchr(value, ':');
	char *end;
	long port;

	if (p->c->listen_host != NULL) {
		snprintf(p->err, p->errlen, "%s:%d: listen is set twice",
		    p->c->path, line);
		return 0;
	}
	if (colon == NULL || colon == value) {
		snprintf(p->err, p->errlen, "%s:%d: listen must be HOST:PORT",
		    p->c->path, line);
		return 0;
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535) {
		snprintf(p->err, p->errlen, "%s:%d: bad port in listen",
		    p->c->path, line);
		return 0;
	}
	if ((p->c->listen_host = strndup(value,
	    (size_t)(colon - value))) == NULL)
		return 0;
	p->c->listen_port = (unsigned)port;
	return 1;
}

static int
add_list(struct parse *p, int line, const char *name, char **list,
    size_t *n, const char *value, int fingerprint)
{
	size_t i, len = strlen(value);
	char *v;

	if (*n == CA_MAX_LIST) {
		snprintf(p->err, p->errlen, "%s:%d: more than %d %s lines",
		    p->c->path, line, CA_MAX_LIST, name);
		return 0;
	}
	if (fingerprint) {
		if (strncmp(value, "sha256:", 7) == 0) {
			value += 7;
			len -= 7;
		}
		for (i = 0; i < len; i++)
			if (!isxdigit((unsigned char)value[i]) &&
			    value[i] != ':')
				break;
		if (i != len || len < 64) {
			snprintf(p->err, p->errlen, "%s:%d: %s must be a "
			    "SHA-256 fingerprint in hex", p->c->path, line,
			    name);
			return 0;
		}
	}
	if ((v = malloc(len + 1)) == NULL)
		return 0;
	/* Fingerprints are kept as 64 lowercase hex digits. */
	for (i = 0, len = 0; value[i] != '\0'; i++) {
		if (fingerprint && value[i] == ':')
			continue;
		v[len++] = fingerprint ? (char)tolower((unsigned char)value[i]) :
		    value[i];
	}
	v[len] = '\0';
	if (fingerprint && len != 64) {
		snprintf(p->err, p->errlen, "%s:%d: %s must be 64 hex digits",
		    p->c->path, line, name);
		free(v);
		return 0;
	}
	list[(*n)++] = v;
	return 1;
}

static int
set_uint(struct parse *p, int line, const char *name, unsigned *dst,
    const char *value, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' ||
	    v < min || v > max) {
		snprintf(p->err, p->errlen, "%s:%d: %s must be a number from "
		    "%u to %u", p->c->path, line, name, min, max);
		return 0;
	}
	*dst = (unsigned)v;
	return 1;
}

static int
set_bool(struct parse *p, int line, const char *name, int *dst,
    const char *value)
{
	if (strcmp(value, "yes") == 0)
		*dst = 1;
	else if (strcmp(value, "no") == 0)
		*dst = 0;
	else {
		snprintf(p->err, p->errlen, "%s:%d: %s must be yes or no",
		    p->c->path, line, name);
		return 0;
	}
	return 1;
}

/* key_ecc_curves: a space- or comma-separated list of P-256, P-384, P-521. */
static int
set_curves(struct parse *p, int line, const char *value)
{
	const char *s = value;
	unsigned bits = 0;
	size_t n;

	while (*s != '\0') {
		n = strcspn(s, " ,");
		if (n == 5 && strncmp(s, "P-256", 5) == 0)
			bits |= CA_CURVE_P256;
		else if (n == 5 && strncmp(s, "P-384", 5) == 0)
			bits |= CA_CURVE_P384;
		else if (n == 5 && strncmp(s, "P-521", 5) == 0)
			bits |= CA_CURVE_P521;
		else if (n != 0) {
			snprintf(p->err, p->errlen, "%s:%d: key_ecc_curves: "
			    "only P-256, P-384 and P-521", p->c->path, line);
			return 0;
		}
		s += n;
		if (*s != '\0')
			s++;
	}
	p->c->key_ecc_curves = bits;
	return 1;
}

/* Feeds inih line by line, counting lines for error messages. */
static char *
reader(char *str, int num, void *arg)
{
	struct parse *p = arg;

	p->line++;
	return fgets(str, num, p->f);
}

int
ca_group_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return 0;
	/* "default" names the top-level policy (inventory, set-group). */
	return i > 0 && i <= BOTID_MAX_GROUP_NAME && strcmp(s, "default") != 0;
}

static struct ca_group *
group_find(const struct ca_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return &c->groups[i];
	return NULL;
}

/*
 * A key of [group NAME]: only the boot-state policy's. A section met again
 * after another one is refused, as a repeated key would be: two halves of
 * one policy far apart in the file are likelier a mistake than intended.
 */
static int
group_key(struct parse *p, int line, const char *section, const char *name,
    const char *value)
{
	struct ca_config *c = p->c;
	struct ca_group *g, *ng;
	const char *gname = section + 6, *why = NULL;
	int fresh = strcmp(section, p->section) != 0;

	snprintf(p->section, sizeof(p->section), "%s", section);
	if (!ca_group_name_valid(gname)) {
		snprintf(p->err, p->errlen, "%s:%d: [%s]: a group name is 1 to "
		    "%u letters, digits, '.', '-' or '_', and not 'default'",
		    c->path, line, section, BOTID_MAX_GROUP_NAME);
		return 0;
	}
	if ((g = group_find(c, gname)) != NULL && fresh) {
		snprintf(p->err, p->errlen, "%s:%d: [%s] is given twice",
		    c->path, line, section);
		return 0;
	}
	if (g == NULL) {
		if (c->ngroups == CA_MAX_GROUPS) {
			snprintf(p->err, p->errlen, "%s:%d: more than %d "
			    "[group] sections", c->path, line, CA_MAX_GROUPS);
			return 0;
		}
		if ((ng = reallocarray(c->groups, c->ngroups + 1,
		    sizeof(*ng))) == NULL) {
			snprintf(p->err, p->errlen, "out of memory");
			return 0;
		}
		c->groups = ng;
		g = &c->groups[c->ngroups];
		memset(g, 0, sizeof(*g));
		if ((g->name = strdup(gname)) == NULL) {
			snprintf(p->err, p->errlen, "out of memory");
			return 0;
		}
		c->ngroups++;
	}
	if (!ca_pcr_config_key(&g->pcr, name, value, &why)) {
		snprintf(p->err, p->errlen, "%s:%d: unknown key '%s' in [%s] "
		    "(a group holds pcr_* keys only)", c->path, line, name,
		    section);
		return 0;
	}
	if (why != NULL) {
		snprintf(p->err, p->errlen, "%s:%d: [%s]: %s", c->path, line,
		    section, why);
		return 0;
	}
	if (strcmp(name, "pcr_policy") == 0)
		g->has_policy = 1;
	return 1;
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct parse *p = arg;
	struct ca_config *c = p->c;
	const char *why = NULL;
	int ok, line = p->line;

	if (p->failed)
		return 0;
	if (strncmp(section, "group ", 6) == 0) {
		if (!(ok = group_key(p, line, section, name, value)))
			p->failed = 1;
		return ok;
	}
	snprintf(p->section, sizeof(p->section), "%s", section);
	if (strcmp(section, "ca") != 0) {
		snprintf(p->err, p->errlen, "%s:%d: unknown section [%s]",
		    c->path, line, section);
		p->failed = 1;
		return 0;
	}
	if (strcmp(name, "trust_domain") == 0)
		ok = set_string(p, line, name, &c->trust_domain, value);
	else if (strcmp(name, "listen") == 0)
		ok = set_listen(p, line, value);
	else if (strcmp(name, "database") == 0)
		ok = set_string(p, line, name, &c->database, value);
	else if (strcmp(name, "ca_cert") == 0)
		ok = set_string(p, line, name, &c->ca_cert, value);
	else if (strcmp(name, "ca_key") == 0)
		ok = set_string(p, line, name, &c->ca_key, value);
	else if (strcmp(name, "tls_key") == 0) {
		ok = set_string(p, line, name, &c->tls_key, value);
		c->tls_key_set = 1;
	} else if (strcmp(name, "tls_cert") == 0)
		ok = set_string(p, line, name, &c->tls_cert, value);
	else if (strcmp(name, "pkcs11_module") == 0)
		ok = set_string(p, line, name, &c->pkcs11_module, value);
	else if (strcmp(name, "pkcs11_token") == 0)
		ok = set_string(p, line, name, &c->pkcs11_token, value);
	else if (strcmp(name, "pkcs11_key_label") == 0)
		ok = set_string(p, line, name, &c->pkcs11_key_label, value);
	else if (strcmp(name, "pkcs11_pin_file") == 0)
		ok = set_string(p, line, name, &c->pkcs11_pin_file, value);
	else if (strcmp(name, "ek_root") == 0)
		ok = add_list(p, line, name, c->ek_roots, &c->nek_roots, value,
		    0);
	else if (strcmp(name, "allow_ek") == 0)
		ok = add_list(p, line, name, c->allow_ek, &c->nallow_ek, value,
		    1);
	else if (strcmp(name, "bot_lifetime") == 0)
		ok = set_seconds(p, line, name, &c->bot_lifetime, value, 30,
		    MAX_LIFETIME);
	else if (strcmp(name, "host_lifetime") == 0)
		ok = set_seconds(p, line, name, &c->host_lifetime, value, 60,
		    MAX_LIFETIME);
	else if (strcmp(name, "session_lifetime") == 0)
		ok = set_seconds(p, line, name, &c->session_lifetime, value, 5,
		    3600);
	else if (strcmp(name, "nonce_lifetime") == 0)
		ok = set_seconds(p, line, name, &c->nonce_lifetime, value, 5,
		    3600);
	else if (strcmp(name, "issuer") == 0)
		ok = set_string(p, line, name, &c->issuer, value);
	else if (strcmp(name, "public_url") == 0)
		ok = set_string(p, line, name, &c->public_url, value);
	else if (strcmp(name, "ssh_ca_key") == 0)
		ok = set_string(p, line, name, &c->ssh_ca_key, value);
	else if (strcmp(name, "token_max_ttl") == 0)
		ok = set_seconds(p, line, name, &c->token_max_ttl, value, 1,
		    BOTID_MAX_TOKEN_TTL);
	else if (strcmp(name, "audit_anchor_history") == 0)
		ok = set_count(p, line, name, &c->audit_anchor_history, value,
		    1, MAX_ANCHOR_HISTORY);
	else if (strcmp(name, "nonce_max") == 0)
		ok = set_uint(p, line, name, &c->nonce_max, value, 1,
		    MAX_NONCE_MAX);
	else if (strcmp(name, "database_sync") == 0) {
		ok = strcmp(value, "full") == 0 || strcmp(value, "normal") == 0;
		if (!ok)
			snprintf(p->err, p->errlen, "%s:%d: database_sync must "
			    "be full or normal", c->path, line);
		c->database_sync_normal = strcmp(value, "normal") == 0;
	} else if (strcmp(name, "nonce_rate") == 0)
		ok = set_uint(p, line, name, &c->nonce_rate, value, 1,
		    MAX_NONCE_RATE);
	else if (strcmp(name, "nonce_burst") == 0)
		ok = set_uint(p, line, name, &c->nonce_burst, value, 1,
		    MAX_NONCE_BURST);
	else if (strcmp(name, "cert_retention") == 0)
		ok = set_seconds(p, line, name, &c->cert_retention, value, 0,
		    10 * MAX_LIFETIME);
	else if (strcmp(name, "purge_interval") == 0)
		ok = set_seconds(p, line, name, &c->purge_interval, value, 0,
		    MAX_LIFETIME);
	else if (strcmp(name, "key_rsa_min_bits") == 0)
		ok = set_uint(p, line, name, &c->key_rsa_min_bits, value,
		    MIN_RSA_MIN_BITS, MAX_RSA_MIN_BITS);
	else if (strcmp(name, "key_ecc_curves") == 0)
		ok = set_curves(p, line, value);
	else if (strcmp(name, "ek_purpose_check") == 0)
		ok = set_bool(p, line, name, &c->ek_purpose_check, value);
	else if (strcmp(name, "max_connections") == 0)
		ok = set_count(p, line, name, &c->max_connections, value, 1,
		    MAX_CONNECTIONS_LIMIT);
	else if (strcmp(name, "max_connections_per_address") == 0)
		ok = set_count(p, line, name, &c->max_connections_per_address,
		    value, 1, MAX_CONNECTIONS_LIMIT);
	else if (strcmp(name, "request_timeout") == 0)
		ok = set_seconds(p, line, name, &c->request_timeout, value, 1,
		    300);
	else if (ca_pcr_config_key(&c->pcr, name, value, &why)) {
		ok = why == NULL;
		if (!ok)
			snprintf(p->err, p->errlen, "%s:%d: %s", c->path, line,
			    why);
	} else {
		snprintf(p->err, p->errlen, "%s:%d: unknown key '%s'", c->path,
		    line, name);
		ok = 0;
	}
	if (!ok)
		p->failed = 1;
	return ok;
}

static int
trust_domain_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return 0;
	return i > 0 && i <= 255;
}

/* What lib/grant.c accepts: it goes into certificates and JSON. */
static int
issuer_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
			return 0;
	return i > 0 && i <= BOTID_MAX_ISSUER;
}

/* Each group's policy is whole: given, and consistent on its own. */
static int
groups_check(const struct ca_config *c, char *err, size_t errlen)
{
	const char *why = NULL;
	size_t i;

	for (i = 0; i < c->ngroups; i++) {
		if (!c->groups[i].has_policy)
			why = "pcr_policy is missing (a group names its "
			    "policy, none included)";
		else if (ca_pcr_config_check(&c->groups[i].pcr, &why) == 0)
			continue;
		snprintf(err, errlen, "%s: [group %s]: %s", c->path,
		    c->groups[i].name, why);
		return BOTID_ERR_CONFIG;
	}
	return 0;
}

/*
 * tls_key and tls_cert default to tls.key and tls.pem in ca_cert's
 * directory: a CA made by botid-ca init has its own TLS key there.
 */
static int
tls_defaults(struct ca_config *c)
{
	const char *slash = strrchr(c->ca_cert, '/');
	int dir = slash != NULL ? (int)(slash - c->ca_cert + 1) : 0;

	if (c->tls_key == NULL && asprintf(&c->tls_key, "%.*stls.key", dir,
	    c->ca_cert) == -1) {
		c->tls_key = NULL;
		return -1;
	}
	if (c->tls_cert == NULL && asprintf(&c->tls_cert, "%.*stls.pem", dir,
	    c->ca_cert) == -1) {
		c->tls_cert = NULL;
		return -1;
	}
	return 0;
}

const struct ca_pcr_policy *
ca_config_pcr(const struct ca_config *c, const char *group)
{
	const struct ca_group *g;

	if (group == NULL)
		return &c->pcr;
	return (g = group_find(c, group)) != NULL ? &g->pcr : NULL;
}

int
ca_config_pcr_any(const struct ca_config *c)
{
	size_t i;

	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i].pcr.mode != CA_PCR_NONE)
			return 1;
	return c->pcr.mode != CA_PCR_NONE;
}

int
ca_config_load(const char *path, struct ca_config **cp, char *err,
    size_t errlen)
{
	struct ca_config *c = NULL;
	struct parse p;
	const char *why = NULL;
	FILE *f = NULL;
	int ir, r = BOTID_ERR_CONFIG;

	*cp = NULL;
	err[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	c->bot_lifetime = DEFAULT_BOT_LIFETIME;
	c->host_lifetime = DEFAULT_HOST_LIFETIME;
	c->session_lifetime = DEFAULT_SESSION;
	c->nonce_lifetime = DEFAULT_NONCE;
	c->token_max_ttl = DEFAULT_TOKEN_MAX_TTL;
	c->audit_anchor_history = DEFAULT_ANCHOR_HISTORY;
	c->nonce_max = DEFAULT_NONCE_MAX;
	c->nonce_rate = DEFAULT_NONCE_RATE;
	c->nonce_burst = DEFAULT_NONCE_BURST;
	c->cert_retention = DEFAULT_RETENTION;
	c->purge_interval = DEFAULT_PURGE;
	c->key_rsa_min_bits = DEFAULT_RSA_MIN_BITS;
	c->key_ecc_curves = CA_CURVE_P256 | CA_CURVE_P384;
	c->ek_purpose_check = 1;
	c->max_connections = DEFAULT_MAX_CONNECTIONS;
	c->max_connections_per_address = DEFAULT_PER_ADDRESS;
	c->request_timeout = DEFAULT_REQUEST_TIMEOUT;
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.err = err;
	p.errlen = errlen;
	p.f = f;
	ir = ini_parse_stream(reader, &p, handler, &p);
	if (p.failed)
		goto out;
	if (ir != 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, ir);
		goto out;
	}
	if (c->trust_domain == NULL || !trust_domain_valid(c->trust_domain))
		snprintf(err, errlen, "%s: trust_domain is missing or not a "
		    "lowercase domain name", path);
	else if (c->listen_host == NULL)
		snprintf(err, errlen, "%s: listen is missing", path);
	else if (c->database == NULL || c->ca_cert == NULL || c->ca_key == NULL)
		snprintf(err, errlen, "%s: database, ca_cert and ca_key are "
		    "required", path);
	else if (strncmp(c->ca_key, "file:", 5) != 0 &&
	    strcmp(c->ca_key, "pkcs11") != 0)
		snprintf(err, errlen, "%s: ca_key must be file:PATH or pkcs11",
		    path);
	else if (strcmp(c->ca_key, "pkcs11") == 0 &&
	    (c->pkcs11_module == NULL || c->pkcs11_token == NULL ||
	    c->pkcs11_key_label == NULL || c->pkcs11_pin_file == NULL))
		snprintf(err, errlen, "%s: ca_key = pkcs11 needs pkcs11_module, "
		    "pkcs11_token, pkcs11_key_label and pkcs11_pin_file", path);
	else if (c->nek_roots == 0 && c->nallow_ek == 0)
		snprintf(err, errlen, "%s: no ek_root: no EK certificate could "
		    "ever be trusted", path);
	else if (ca_pcr_config_check(&c->pcr, &why) != 0)
		snprintf(err, errlen, "%s: %s", path, why);
	else if (groups_check(c, err, errlen) != 0)
		r = BOTID_ERR_CONFIG;	/* err names the group */
	else if (c->issuer == NULL && asprintf(&c->issuer, "spiffe://%s",
	    c->trust_domain) == -1) {
		c->issuer = NULL;
		r = BOTID_ERR_ALLOC;
	} else if (!issuer_valid(c->issuer) || (c->public_url != NULL &&
	    (!issuer_valid(c->public_url) ||
	    strncmp(c->public_url, "https://", 8) != 0)))
		snprintf(err, errlen, "%s: issuer and public_url must be 1..%u "
		    "printable characters without spaces or quotes, "
		    "public_url an https:// URL", path, BOTID_MAX_ISSUER);
	else if (tls_defaults(c) != 0)
		r = BOTID_ERR_ALLOC;
	else {
		*cp = c;
		c = NULL;
		r = 0;
	}
 out:
	if (f != NULL)
		fclose(f);
	ca_config_free(c);
	return r;
}

void
ca_config_free(struct ca_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->trust_domain);
	free(c->listen_host);
	free(c->database);
	free(c->ca_cert);
	free(c->ca_key);
	free(c->tls_key);
	free(c->tls_cert);
	free(c->pkcs11_module);
	free(c->pkcs11_token);
	free(c->pkcs11_key_label);
	free(c->pkcs11_pin_file);
	free(c->issuer);
	free(c->public_url);
	free(c->ssh_ca_key);
	for (i = 0; i < c->nek_roots; i++)
		free(c->ek_roots[i]);
	for (i = 0; i < c->nallow_ek; i++)
		free(c->allow_ek[i]);
	for (i = 0; i < c->ngroups; i++)
		free(c->groups[i].name);
	free(c->groups);
	free(c);
}
