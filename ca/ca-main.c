/*
 * botid-ca: the attesting CA. `serve` answers agents over HTTPS; `init`,
 * `token create`, `revoke`, `unrevoke`, `purge`, `inventory` and `audit
 * export` are the operator's commands and work on the same database while
 * the daemon runs. `serve` also purges expired state every purge_interval,
 * from a thread with a database connection of its own, so the event loop
 * never waits for it.
 */
#include "botid-config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ca/ca-api.h"
#include "ca/ca-config.h"
#include "ca/ca-db.h"
#include "ca/ca-http.h"
#include "ca/ca-issue.h"
#include "lib/botid.h"
#include "lib/limits.h"
#include "lib/log.h"

#define DEFAULT_CONFIG	BOTID_SYSCONFDIR "/botid/ca.conf"
#define TOKEN_BYTES	24

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid-ca COMMAND [-c CONFIG] [ARGS]\n"
	    "commands:\n"
	    "  init                          create the CA key (file), certificate\n"
	    "                                and database if absent\n"
	    "  serve [--port-file FILE] [-v] answer agents over HTTPS\n"
	    "  token create --ttl DURATION [--bots a,b] [--group NAME]\n"
	    "                                print a single-use join token\n"
	    "  revoke host HOST_ID | bot SPIFFE_ID\n"
	    "  unrevoke bot SPIFFE_ID         lift a bot's revocation\n"
	    "  tls-pin                       print the TLS key's pin for agents\n"
	    "  purge [--at UNIX_TIME]        delete expired nonces, sessions,\n"
	    "                                tokens and old certificates\n"
	    "  host approve-boot HOST_ID     accept a host's changed boot state\n"
	    "  host set-group HOST_ID NAME|--default\n"
	    "                                move a host to another group\n"
	    "  inventory                     hosts and the certificates issued,\n"
	    "                                each host's audit anchor, boot\n"
	    "                                state and group\n"
	    "  audit export HOST_ID          the host's newest audit anchor (JSON)\n"
	    "CONFIG defaults to %s. See botid-ca(8).\n", DEFAULT_CONFIG);
}

static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("botid-ca: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
load(const char *path, struct ca_config **cfg, struct ca_db **db)
{
	char err[1024];

	if (ca_config_load(path, cfg, err, sizeof(err)) != 0)
		return fail("%s", err);
	if (db != NULL && ca_db_open((*cfg)->database, db, err,
	    sizeof(err)) != 0)
		return fail("%s", err);
	return 0;
}

static int
cmd_init(const char *conf)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	char err[1024];
	int made = 0, r = 1;

	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (ca_signer_init(cfg, &made, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	if (made & 1)
		printf("created the CA key %s\n", cfg->ca_key + 5);
	if (made & 2)
		printf("created the CA certificate %s\n", cfg->ca_cert);
	if (made == 0)
		printf("CA certificate %s exists; nothing changed\n",
		    cfg->ca_cert);
	if (ca_tls_key_init(cfg, &made, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	if (made & 1)
		printf("created the TLS key %s (agents pin it: botid-ca "
		    "tls-pin)\n", cfg->tls_key);
	if (made & 2)
		printf("created the TLS certificate %s\n", cfg->tls_cert);
	/* A PostgreSQL URI may carry a password: not echoed. */
	if (ca_db_is_postgres(cfg->database))
		printf("database (PostgreSQL) ready\n");
	else
		printf("database %s ready\n", cfg->database);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* One purge as of now; counts in the log. */
static int
purge_once(struct ca_db *db, const struct ca_config *cfg, time_t now,
    struct ca_purge_counts *c)
{
	int r;

	if ((r = ca_db_purge(db, now, cfg->cert_retention, c)) != 0) {
		log_err("ca: purge failed: %s", botid_strerror(r));
		return r;
	}
	log_info("ca: purged %ld nonce(s), %ld session(s), %ld token(s), "
	    "%ld certificate(s)", c->nonces, c->sessions, c->tokens, c->certs);
	return 0;
}

/* The purge thread and how serve stops it before freeing what it reads. */
struct purge_thread {
	const struct ca_config	*cfg;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;	/* signalled to stop */
	int			 stop;
};

static void *
purge_loop(void *arg)
{
	struct purge_thread *pt = arg;
	struct ca_purge_counts c;
	struct ca_db *db = NULL;
	struct timespec until;
	sigset_t all;
	char err[1024];
	int stop;

	/* Signals are the event loop's. */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		(void)clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += pt->cfg->purge_interval;
		pthread_mutex_lock(&pt->mu);
		while (!pt->stop && pthread_cond_timedwait(&pt->cv, &pt->mu,
		    &until) != ETIMEDOUT)
			;
		stop = pt->stop;
		pthread_mutex_unlock(&pt->mu);
		if (stop)
			break;
		/* Opened for each run: a database restart costs one run. */
		if (ca_db_open(pt->cfg->database, &db, err,
		    sizeof(err)) != 0) {
			log_err("ca: purge: %s", err);
			continue;
		}
		(void)purge_once(db, pt->cfg, time(NULL), &c);
		ca_db_close(db);
		db = NULL;
	}
	return NULL;
}

/* Starts the purge thread (cv on the monotonic clock). Errors: _INTERNAL. */
static int
purge_start(struct purge_thread *pt, pthread_t *th)
{
	pthread_condattr_t ca;
	int r = BOTID_ERR_INTERNAL;

	if (pthread_condattr_init(&ca) != 0)
		return r;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_mutex_init(&pt->mu, NULL) == 0) {
		if (pthread_cond_init(&pt->cv, &ca) != 0)
			pthread_mutex_destroy(&pt->mu);
		else if (pthread_create(th, NULL, purge_loop, pt) != 0) {
			pthread_cond_destroy(&pt->cv);
			pthread_mutex_destroy(&pt->mu);
		} else
			r = 0;
	}
	pthread_condattr_destroy(&ca);
	return r;
}

/* Stops it: a purge under way finishes first. */
static void
purge_stop(struct purge_thread *pt, pthread_t th)
{
	pthread_mutex_lock(&pt->mu);
	pt->stop = 1;
	pthread_cond_signal(&pt->cv);
	pthread_mutex_unlock(&pt->mu);
	(void)pthread_join(th, NULL);
	pthread_cond_destroy(&pt->cv);
	pthread_mutex_destroy(&pt->mu);
}

/* Hosts of a group ca.conf no longer has, one run of rows per group. */
struct group_scan {
	const struct ca_config	*cfg;
	char			 group[BOTID_MAX_GROUP_NAME + 1];
	size_t			 hosts;
};

static void
group_scan_flush(struct group_scan *g)
{
	if (g->hosts > 0)
		log_warn("ca: %zu host(s) in host group %s, which %s does not "
		    "define: their certificates are refused (restore the "
		    "group or botid-ca host set-group)", g->hosts, g->group,
		    g->cfg->path);
	g->hosts = 0;
}

static int
group_scan_row(const char *host_id, const char *group, void *arg)
{
	struct group_scan *g = arg;

	(void)host_id;
	if (group == NULL || ca_config_pcr(g->cfg, group) != NULL)
		return 0;
	if (strcmp(group, g->group) != 0) {
		group_scan_flush(g);
		snprintf(g->group, sizeof(g->group), "%s", group);
	}
	g->hosts++;
	return 0;
}

/* Says at start which hosts are refused for want of their group. */
static int
groups_missing_log(const struct ca_config *cfg, struct ca_db *db)
{
	struct group_scan g;
	int r;

	memset(&g, 0, sizeof(g));
	g.cfg = cfg;
	r = ca_db_host_group_each(db, group_scan_row, &g);
	group_scan_flush(&g);
	return r;
}

static int
cmd_serve(const char *conf, const char *port_file)
{
	struct purge_thread pt;
	pthread_t purge_th;
	int purging = 0;
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	struct ca_signer *signer = NULL;
	struct ca_api api;
	char err[1024];
	int r = 1;

	memset(&api, 0, sizeof(api));
	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (groups_missing_log(cfg, db) != 0) {
		fail("cannot read the hosts' groups");
		goto out;
	}
	if (ca_signer_open(cfg, &signer, err, sizeof(err)) != 0 ||
	    ca_api_init(&api, cfg, db, signer, err, sizeof(err)) != 0) {
		fail("%s", err);
		goto out;
	}
	/*
	 * Only the requests' connection: the operator's commands (revoke,
	 * token create) and the purge keep every commit on the disk.
	 */
	if (cfg->database_sync_normal) {
		if (ca_db_sync_relax(db) != 0) {
			fail("database_sync = normal: cannot set it");
			goto out;
		}
		if (!ca_db_is_postgres(cfg->database))
			log_warn("ca: database_sync = normal: commits are not "
			    "fsynced; a power loss may undo the last ones");
	}
	if (cfg->purge_interval > 0) {
		memset(&pt, 0, sizeof(pt));
		pt.cfg = cfg;
		if (purge_start(&pt, &purge_th) != 0) {
			fail("cannot start the purge thread");
			goto out;
		}
		purging = 1;
	}
	if (ca_http_serve(&api, cfg->listen_host, cfg->listen_port,
	    port_file) != 0)
		goto out;
	r = 0;
 out:
	if (purging)
		purge_stop(&pt, purge_th);
	ca_api_free(&api);
	ca_signer_close(signer);
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
bots_valid(const char *list)
{
	size_t i, n = 0;

	for (i = 0; list[i] != '\0'; i++) {
		char ch = list[i];

		if (ch == ',') {
			if (n == 0)
				return 0;
			n = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.') || ++n > BOTID_MAX_BOT_NAME)
			return 0;
	}
	return n > 0;
}

static int
cmd_token(const char *conf, const char *ttl, const char *bots,
    const char *group)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	uint8_t raw[TOKEN_BYTES], hash[32];
	char token[2 * TOKEN_BYTES + 1], err[1024], *pin = NULL;
	long secs;
	size_t i;
	int r = 1, pr;

	if (ttl == NULL ||
	    ca_duration_parse(ttl, 1, 366L * 86400, &secs) != 0)
		return fail("token create: --ttl DURATION is required "
		    "(e.g. 3600, 30m, 1h, 7d; at most a year)");
	if (bots != NULL && !bots_valid(bots))
		return fail("token create: --bots must be bot names separated "
		    "by commas");
	if (load(conf, &cfg, &db) != 0)
		goto out;
	/* A token for a group the CA cannot apply would enrol nobody. */
	if (group != NULL && ca_config_pcr(cfg, group) == NULL) {
		fail("token create: host group '%s' is not in %s", group,
		    cfg->path);
		goto out;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		fail("no randomness");
		goto out;
	}
	for (i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	/* Only the hash is kept: a copy of the database enrols nobody. */
	if (EVP_Digest(token, strlen(token), hash, NULL, EVP_sha256(),
	    NULL) != 1 ||
	    ca_db_token_add_group(db, hash, time(NULL) + secs, bots,
	    group) != 0) {
		fail("cannot record the token");
		goto out;
	}
	/*
	 * The TLS key's pin after a dot: botid-provision checks the server
	 * against it before it sends the token (a CA from before the TLS
	 * key prints the token alone, which provisions as before).
	 */
	pr = ca_tls_pin(cfg, &pin, err, sizeof(err));
	if (pr != 0 && pr != BOTID_ERR_NOT_FOUND) {
		fail("token create: %s", err);
		goto out;
	}
	printf("%s%s%s\n", token, pin != NULL ? "." : "",
	    pin != NULL ? pin : "");
	r = 0;
 out:
	free(pin);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
cmd_revoke(const char *conf, const char *kind, const char *what)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int n = 0, r = 1, rc;

	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (strcmp(kind, "host") == 0) {
		rc = ca_db_host_revoke(db, what, time(NULL));
		if (rc == BOTID_ERR_NOT_FOUND) {
			fail("revoke: no enrolled, unrevoked host %s", what);
			goto out;
		}
		if (rc != 0) {
			fail("revoke: database error");
			goto out;
		}
		printf("host %s revoked, with every certificate issued to it\n",
		    what);
	} else if (strcmp(kind, "bot") == 0) {
		if (strncmp(what, "spiffe://", 9) != 0) {
			fail("revoke bot: give the bot's SPIFFE ID");
			goto out;
		}
		if (ca_db_cert_revoke_spiffe(db, what, time(NULL), &n) != 0) {
			fail("revoke: database error");
			goto out;
		}
		/*
		 * The SPIFFE ID is revoked either way (a bot not certified
		 * yet, or again): success, and the line says what was done.
		 */
		if (n == 0)
			printf("%s revoked: no unrevoked certificate for it; "
			    "none is issued until unrevoke\n", what);
		else
			printf("%d certificate(s) for %s revoked\n", n, what);
	} else {
		fail("revoke: host HOST_ID or bot SPIFFE_ID");
		goto out;
	}
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* One host's newest audit anchor, with its age, as an inventory row. */
static int
anchor_row(const struct ca_anchor *a, void *arg)
{
	time_t *now = arg;

	printf("%-16s %-10" PRIu64 " %-10" PRIu64 " %-9s %-27s %-10lld %llds\n",
	    a->host_id, a->number, a->seq, a->reason, a->time,
	    (long long)a->received, (long long)(*now - a->received));
	return 0;
}

static int
cmd_unrevoke(const char *conf, const char *kind, const char *what)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int r = 1, rc;

	if (strcmp(kind, "bot") != 0 || strncmp(what, "spiffe://", 9) != 0)
		return fail("unrevoke: bot SPIFFE_ID");
	if (load(conf, &cfg, &db) != 0)
		goto out;
	if ((rc = ca_db_bot_lift(db, what)) == BOTID_ERR_NOT_FOUND) {
		fail("unrevoke: %s is not revoked", what);
		goto out;
	} else if (rc != 0) {
		fail("unrevoke: database error");
		goto out;
	}
	printf("%s may be certified again; its old certificates stay "
	    "revoked\n", what);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

static int
cmd_purge(const char *conf, const char *at)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	struct ca_purge_counts c;
	time_t now = time(NULL);
	long long v;
	char *end;
	int r = 1;

	if (at != NULL) {
		errno = 0;
		v = strtoll(at, &end, 10);
		if (errno != 0 || end == at || *end != '\0' || v < 0)
			return fail("purge: --at takes a Unix time");
		now = (time_t)v;
	}
	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (purge_once(db, cfg, now, &c) != 0) {
		fail("purge: database error");
		goto out;
	}
	printf("purged %ld nonce(s), %ld session(s), %ld token(s), %ld "
	    "certificate(s)\n", c.nonces, c.sessions, c.tokens, c.certs);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* Prints the pin of tls_key for botid provision --ca-pin. */
static int
cmd_tls_pin(const char *conf)
{
	struct ca_config *cfg = NULL;
	char err[1024], *pin = NULL;
	int r = 1;

	if (load(conf, &cfg, NULL) != 0)
		goto out;
	if (ca_tls_pin(cfg, &pin, err, sizeof(err)) != 0) {
		fail("tls-pin: %s", err);
		goto out;
	}
	printf("%s\n", pin);
	r = 0;
 out:
	free(pin);
	ca_config_free(cfg);
	return r;
}

/* Whether a host is in a group: the inventory then lists groups. */
static int
group_seen(const char *host_id, const char *group, void *arg)
{
	(void)host_id;
	*(int *)arg |= group != NULL;
	return 0;
}

/* One host's group, its policy and the PCRs it selects. */
static int
group_row(const char *host_id, const char *group, void *arg)
{
	const struct ca_config *cfg = arg;
	const struct ca_pcr_policy *p = ca_config_pcr(cfg, group);
	char pcrs[CA_PCR_COUNT * 3 + 1] = "-";
	size_t used = 0;
	int i;

	for (i = 0; p != NULL && i < CA_PCR_COUNT; i++)
		if (p->mode != CA_PCR_NONE && (p->select & (1u << i)))
			used += (size_t)snprintf(pcrs + used, sizeof(pcrs) -
			    used, "%s%d", used > 0 ? "," : "", i);
	return printf("%-16s %-32s %-10s %s\n", host_id, group != NULL ?
	    group : "default", p == NULL ? "undefined" :
	    p->mode == CA_PCR_EXACT ? "exact" : p->mode == CA_PCR_FIRST_USE ?
	    "first-use" : "none", pcrs) > 0 ? 0 : BOTID_ERR_IO;
}

/* Each host's group, when ca.conf has groups or a host is in one. */
static int
group_inventory(const struct ca_config *cfg, struct ca_db *db)
{
	int seen = cfg->ngroups > 0, r;

	if (!seen && (r = ca_db_host_group_each(db, group_seen, &seen)) != 0)
		return r;
	if (!seen)
		return 0;
	if (printf("\n%-16s %-32s %-10s %s\n", "HOST", "GROUP", "POLICY",
	    "PCRS") < 0)
		return BOTID_ERR_IO;
	return ca_db_host_group_each(db, group_row, (void *)cfg);
}

static int
cmd_inventory(const char *conf)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	time_t now = time(NULL);
	int r = 1;

	if (load(conf, &cfg, &db) == 0 && ca_db_inventory(db, stdout) == 0 &&
	    printf("\n%-16s %-10s %-10s %-9s %-27s %-10s %s\n", "HOST",
	    "CHECKPOINT", "SEQ", "REASON", "MADE", "ANCHORED", "AGE") > 0 &&
	    ca_db_anchor_each(db, anchor_row, &now) == 0 &&
	    (!ca_config_pcr_any(cfg) || (putchar('\n') != EOF &&
	    ca_db_boot_inventory(db, stdout) == 0)) &&
	    group_inventory(cfg, db) == 0)
		r = 0;
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* `audit export HOST_ID`: what `botid audit verify --anchor` reads. */
static int
cmd_audit_export(const char *conf, const char *host_id)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	struct ca_anchor a;
	json_t *j = NULL;
	int r = 1, dr;

	memset(&a, 0, sizeof(a));
	if (load(conf, &cfg, &db) != 0)
		goto out;
	dr = ca_db_anchor_latest(db, host_id, &a);
	if (dr == BOTID_ERR_NOT_FOUND) {
		r = fail("audit export: host %s anchored no audit checkpoint",
		    host_id);
		goto out;
	}
	if (dr != 0 || (j = ca_anchor_json(&a)) == NULL ||
	    json_dumpf(j, stdout, JSON_COMPACT) != 0 || puts("") == EOF ||
	    fflush(stdout) != 0) {
		r = fail("audit export: %s", dr != 0 ? botid_strerror(dr) :
		    "cannot write");
		goto out;
	}
	r = 0;
 out:
	json_decref(j);
	ca_anchor_clear(&a);
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/*
 * `host set-group HOST NAME|--default`: the host's certificates follow
 * NAME's boot-state policy (group NULL: the top-level one) from its next
 * request. Its recorded boot state (golden values) stays: a move never
 * approves a boot state (botid-ca(8)).
 */
static int
cmd_set_group(const char *conf, const char *host, const char *group)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int r = 1, rc;

	if (load(conf, &cfg, &db) != 0)
		goto out;
	if (group != NULL && ca_config_pcr(cfg, group) == NULL) {
		fail("set-group: host group '%s' is not in %s", group,
		    cfg->path);
		goto out;
	}
	rc = ca_db_host_set_group(db, host, group);
	if (rc == BOTID_ERR_NOT_FOUND) {
		fail("set-group: no enrolled, unrevoked host %s", host);
		goto out;
	}
	if (rc != 0) {
		fail("set-group: database error");
		goto out;
	}
	log_info("ca: host %s: moved to host group %s by the operator", host,
	    group != NULL ? group : "default");
	printf("host %s: now in host group %s; its recorded boot state is "
	    "kept\n", host, group != NULL ? group : "default");
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

/* `host approve-boot HOST`: the host's last quoted PCRs become golden. */
static int
cmd_host(const char *conf, const char *verb, const char *host)
{
	struct ca_config *cfg = NULL;
	struct ca_db *db = NULL;
	int r = 1, rc;

	if (strcmp(verb, "approve-boot") != 0) {
		usage(stderr);
		return 2;
	}
	if (load(conf, &cfg, &db) != 0)
		goto out;
	rc = ca_db_boot_approve(db, host, time(NULL));
	if (rc == BOTID_ERR_NOT_FOUND) {
		fail("approve-boot: no quote recorded for host %s", host);
		goto out;
	}
	if (rc != 0) {
		fail("approve-boot: database error");
		goto out;
	}
	log_info("ca: host %s: boot state approved by the operator", host);
	printf("host %s: its last quoted PCR values are now its golden "
	    "values\n", host);
	r = 0;
 out:
	ca_db_close(db);
	ca_config_free(cfg);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "bots", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "at", required_argument, NULL, 'a' },
		{ "group", required_argument, NULL, 'g' },
		{ "default", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = DEFAULT_CONFIG, *port_file = NULL, *ttl = NULL;
	const char *bots = NULL, *at = NULL, *group = NULL, *cmd;
	struct rlimit no_core = { 0, 0 };
	int ch, verbose = 0, to_default = 0;

	/* The CA key may be in memory: no core dumps, no ptrace by peers. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    setrlimit(RLIMIT_CORE, &no_core) == -1)
		return fail("cannot disable core dumps: %s", strerror(errno));

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "token") == 0 || strcmp(cmd, "audit") == 0) {
		if (argc < 2 || strcmp(argv[1], strcmp(cmd, "token") == 0 ?
		    "create" : "export") != 0) {
			usage(stderr);
			return 2;
		}
		argc--;
		argv++;
	}
	while ((ch = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'p': port_file = optarg; break;
		case 't': ttl = optarg; break;
		case 'b': bots = optarg; break;
		case 'a': at = optarg; break;
		case 'g': group = optarg; break;
		case 'd': to_default = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_init("botid-ca", verbose || strcmp(cmd, "serve") == 0 ?
	    BOTID_LOG_INFO : BOTID_LOG_WARN, 0);
	if (strcmp(cmd, "init") == 0 && optind == argc)
		return cmd_init(conf);
	if (strcmp(cmd, "serve") == 0 && optind == argc)
		return cmd_serve(conf, port_file);
	if (strcmp(cmd, "token") == 0 && optind == argc && !to_default)
		return cmd_token(conf, ttl, bots, group);
	if (strcmp(cmd, "revoke") == 0 && optind + 2 == argc)
		return cmd_revoke(conf, argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "unrevoke") == 0 && optind + 2 == argc)
		return cmd_unrevoke(conf, argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "tls-pin") == 0 && optind == argc)
		return cmd_tls_pin(conf);
	if (strcmp(cmd, "purge") == 0 && optind == argc)
		return cmd_purge(conf, at);
	if (strcmp(cmd, "inventory") == 0 && optind == argc)
		return cmd_inventory(conf);
	if (strcmp(cmd, "audit") == 0 && optind + 1 == argc)
		return cmd_audit_export(conf, argv[optind]);
	if (strcmp(cmd, "host") == 0 && optind < argc &&
	    strcmp(argv[optind], "set-group") == 0 && group == NULL &&
	    optind + 3 - to_default == argc)
		return cmd_set_group(conf, argv[optind + 1], to_default ? NULL :
		    argv[optind + 2]);
	if (strcmp(cmd, "host") == 0 && optind + 2 == argc && group == NULL &&
	    !to_default)
		return cmd_host(conf, argv[optind], argv[optind + 1]);
	usage(stderr);
	return 2;
}
