/*
 * botid-agent.conf(5) reader. inih splits "key = value" lines; our line
 * reader in front of it rejects what inih would silently accept or mangle
 * (overlong lines split in two, indented lines glued onto the previous
 * value, section names cut short) and tracks sections and line numbers
 * itself, because Debian's inih passes neither to the handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "agent/config.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/wire.h"

#define CONFIG_DEFAULT_SOCKET		"/run/botid/agent.sock"
#define CONFIG_DEFAULT_SOCKET_MODE	0660
#define CONFIG_DEFAULT_STATE_DIR	"/var/lib/botid"
#define CONFIG_DEFAULT_AUDIT_LOG	"/var/log/botid/audit.log"
#define CONFIG_DEFAULT_EVENT_LOG	\
	"/sys/kernel/security/tpm0/binary_bios_measurements"
#define CONFIG_DEFAULT_CONNECTIONS	BOTID_DEFAULT_CONNECTIONS
#define CONFIG_DEFAULT_TPM_KEYS		2
#define CONFIG_DEFAULT_SESSIONS		4
#define CONFIG_DEFAULT_RENEW_PERCENT	50u
#define CONFIG_DEFAULT_ROTATE_GRACE	60u		/* seconds */
#define CONFIG_MAX_ROTATE_GRACE		86400u
#define CONFIG_MIN_ROTATE_EVERY		10u
#define CONFIG_MAX_ROTATE_EVERY		(365u * 86400u)
#define CONFIG_DEFAULT_CHECKPOINT_ENTRIES	100
#define CONFIG_DEFAULT_CHECKPOINT_INTERVAL	60	/* seconds */

#define CONFIG_MAX_TOKEN_LABEL	32	/* CK_TOKEN_INFO.label is 32 bytes */
#define CONFIG_MAX_UNIT		255	/* systemd's UNIT_NAME_MAX less NUL */
#define CONFIG_MAX_CREDENTIAL	255	/* a file name */
#define CONFIG_MAX_NSS_BUF	(1024 * 1024)	/* getpwnam_r() scratch space */
#define CONFIG_SOCKET_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum config_section {
	SECTION_NONE = 0,
	SECTION_AGENT,
	SECTION_BOT,
};

/* Keys of [agent]; the order matches agent_keys[]. */
enum agent_key {
	AGENT_SOCKET = 0,
	AGENT_SOCKET_MODE,
	AGENT_SOCKET_GROUP,
	AGENT_STATE_DIR,
	AGENT_TCTI,
	AGENT_AUDIT_LOG,
	AGENT_MAX_CONNECTIONS,
	AGENT_IDLE_TIMEOUT,
	AGENT_TPM_LOADED_KEYS,
	AGENT_PKCS11_SESSIONS,
	AGENT_USER,
	AGENT_ADMIN,
	AGENT_RENEW_AT,
	AGENT_AUDIT_CHECKPOINT_ENTRIES,
	AGENT_AUDIT_CHECKPOINT_INTERVAL,
	AGENT_AUDIT_SYSLOG,
	AGENT_ROTATE_GRACE,
	AGENT_MAX_CONNECTIONS_PER_UID,
	AGENT_FIRST_REQUEST_TIMEOUT,
	AGENT_EVENT_LOG,
	AGENT_SSH_SOCKET,
	AGENT_MAX_QUEUE_WAIT,
	AGENT_NKEYS,
};

static const char *const agent_keys[AGENT_NKEYS] = {
	"socket", "socket_mode", "socket_group", "state_dir", "tcti",
	"audit_log", "max_connections", "idle_timeout", "tpm_loaded_keys",
	"pkcs11_sessions", "user", "admin", "renew_at",
	"audit_checkpoint_entries", "audit_checkpoint_interval", "audit_syslog",
	"rotate_grace", "max_connections_per_uid", "first_request_timeout",
	"event_log",
	"ssh_socket",
	"max_queue_wait",
};

/* Keys of [bot NAME]; the order matches bot_keys[]. */
enum bot_key {
	BOT_BACKEND = 0,
	BOT_KEY_TYPE,
	BOT_MODULE,
	BOT_TOKEN,
	BOT_PIN_FILE,
	BOT_PIN_CREDENTIAL,
	BOT_ALLOW,
	BOT_SCOPES,
	BOT_MAX_TOKEN_TTL,
	BOT_ROTATE_EVERY,
	BOT_NKEYS,
};

static const char *const bot_keys[BOT_NKEYS] = {
	"backend", "key_type", "module", "token", "pin_file",
	"pin_credential", "allow", "scopes", "max_token_ttl", "rotate_every",
};

/*
 * Lines where each key of a bot was set: checks that need the whole
 * section (a pkcs11 key in a tpm bot) point at the offending line.
 */
struct bot_lines {
	int	key[BOT_NKEYS];
};

struct config_parse {
	const char			*path;
	char				*err;
	size_t				 errlen;
	int				 r;	/* first error, 0 if none */
	struct botid_buf		 file;	/* unread rest of the file */
	int				 lineno; /* lines handed to inih */
	int				 key_in_section; /* an indented line
						  * would continue it */
	enum config_section		 section;
	int				 agent_line; /* of [agent], 0: none */
	int				 agent_lines[AGENT_NKEYS];
	struct botid_agent_config	*cfg;
	size_t				 botcap;
	struct bot_lines		*bot_lines; /* parallel to cfg->bots */
};

static const struct {
	const char		*name;
	enum botid_key_type	 type;
} key_types[] = {
	{ "ecdsa-p256", BOTID_KEY_ECDSA_P256 },
	{ "ecdsa-p384", BOTID_KEY_ECDSA_P384 },
	{ "rsa-2048", BOTID_KEY_RSA_2048 },
	{ "rsa-3072", BOTID_KEY_RSA_3072 },
};

/*
 * Records the first error as "PATH:LINE: message" (or "PATH: message"
 * for line 0) and returns r; later errors are dropped because they are
 * often consequences of the first.
 */
static int __attribute__((format(printf, 4, 5)))
config_error(struct config_parse *p, int r, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (p->r != 0)
		return p->r;
	p->r = r;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errlen == 0)
		return r;
	if (line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->path, line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, msg);
	return r;
}

static int	config_parse_allow(struct config_parse *, const char *,
		    struct botid_allow_rule **, size_t *, const char *);

static int
config_is_ctrl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
config_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Returns a pointer past the leading spaces and tabs of s. */
static const char *
config_skip_space(const char *s)
{
	while (config_is_space(*s))
		s++;
	return s;
}

/*
 * Parses a decimal number in [min, max]; digits only, so "+1", " 1",
 * "0x10" and "1e3" are refused rather than half-read.
 */
static int
config_parse_number(const char *s, unsigned long min, unsigned long max,
    unsigned long *v)
{
	unsigned long n = 0;

	*v = 0;
	if (*s == '\0')
		return BOTID_ERR_INVALID;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return BOTID_ERR_INVALID;
		if (n > (ULONG_MAX - (unsigned long)(*s - '0')) / 10)
			return BOTID_ERR_INVALID;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	if (n < min || n > max)
		return BOTID_ERR_INVALID;
	*v = n;
	return 0;
}

/*
 * max_queue_wait: 0 (no bound), or a number of milliseconds ("250ms"),
 * seconds ("2s", or a bare number as for other durations), minutes
 * ("1m") or hours ("1h"), from 1 ms to BOTID_MAX_QUEUE_WAIT_MS.
 */
static int
config_parse_wait_ms(const char *s, unsigned long *ms)
{
	char num[24];
	unsigned long unit = 1000, n;
	size_t len = strlen(s);

	*ms = 0;
	if (len == 0 || len >= sizeof(num))
		return BOTID_ERR_INVALID;
	memcpy(num, s, len + 1);
	if (len > 2 && strcmp(num + len - 2, "ms") == 0) {
		unit = 1;
		num[len - 2] = '\0';
	} else if (num[len - 1] == 's' || num[len - 1] == 'm' ||
	    num[len - 1] == 'h') {
		unit = num[len - 1] == 's' ? 1000 : num[len - 1] == 'm' ?
		    60000 : 3600000;
		num[len - 1] = '\0';
	}
	if (config_parse_number(num, 0, BOTID_MAX_QUEUE_WAIT_MS, &n) != 0 ||
	    n > BOTID_MAX_QUEUE_WAIT_MS / unit)
		return BOTID_ERR_INVALID;
	*ms = n * unit;
	return 0;
}

/*
 * A duration: a whole number of seconds, or of minutes, hours or days
 * with the suffix s, m, h or d ("90s", "30m", "24h", "7d").
 */
static int
config_parse_duration(const char *s, unsigned long min, unsigned long max,
    unsigned long *v)
{
	char num[24];
	unsigned long unit = 1, n;
	size_t len = strlen(s);

	*v = 0;
	if (len == 0 || len >= sizeof(num))
		return BOTID_ERR_INVALID;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: unit = 0; break;
	}
	if (unit != 0)
		num[len - 1] = '\0';
	else
		unit = 1;
	if (config_parse_number(num, 0, ULONG_MAX / 86400, &n) != 0)
		return BOTID_ERR_INVALID;
	n *= unit;
	if (n < min || n > max)
		return BOTID_ERR_INVALID;
	*v = n;
	return 0;
}

static int
config_is_number(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * Resolves a user (group == 0) or group name with getpwnam_r() or
 * getgrnam_r(), growing the scratch buffer on ERANGE. Returns 0,
 * BOTID_ERR_NOT_FOUND, BOTID_ERR_ALLOC, or BOTID_ERR_IO with the lookup's
 * error in *errp.
 */
static int
config_lookup_id(const char *name, int group, unsigned long *id, int *errp)
{
	struct passwd pw, *pwres = NULL;
	struct group gr, *grres = NULL;
	char *buf = NULL, *nbuf;
	size_t len = 1024;
	int e, found, r = BOTID_ERR_INTERNAL;

	*id = 0;
	*errp = 0;
	for (;;) {
		if ((nbuf = realloc(buf, len)) == NULL) {
			r = BOTID_ERR_ALLOC;
			goto out;
		}
		buf = nbuf;
		e = group ? getgrnam_r(name, &gr, buf, len, &grres) :
		    getpwnam_r(name, &pw, buf, len, &pwres);
		if (e != ERANGE)
			break;
		if (len >= CONFIG_MAX_NSS_BUF) {
			*errp = e;
			r = BOTID_ERR_IO;
			goto out;
		}
		len *= 2;
	}
	found = group ? grres != NULL : pwres != NULL;
	/* POSIX lets "no such user" come back as any of these. */
	if (!found && (e == 0 || e == ENOENT || e == ESRCH)) {
		r = BOTID_ERR_NOT_FOUND;
		goto out;
	}
	if (e != 0 || !found) {
		*errp = e != 0 ? e : EIO;
		r = BOTID_ERR_IO;
		goto out;
	}
	*id = group ? (unsigned long)gr.gr_gid : (unsigned long)pw.pw_uid;
	r = 0;
out:
	free(buf);
	return r;
}

/*
 * Resolves "NAME" or "NUMBER" to a uid (group == 0) or gid (group == 1)
 * now, so that a typo fails the load instead of silently matching nobody.
 * (uid_t)-1 is refused: the kernel uses it to mean "no change".
 */
static int
config_resolve_id(struct config_parse *p, const char *key, const char *s,
    int group, unsigned long *id)
{
	const char *what = group ? "group" : "user";
	int e, r;

	*id = 0;
	if (config_is_number(s)) {
		if (config_parse_number(s, 0, (unsigned long)(uid_t)-1 - 1,
		    id) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "%s: %s id '%s' out of range", key, what, s);
		return 0;
	}
	r = config_lookup_id(s, group, id, &e);
	switch (r) {
	case 0:
		return 0;
	case BOTID_ERR_NOT_FOUND:
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "%s: unknown %s '%s'", key, what, s);
	case BOTID_ERR_ALLOC:
		return config_error(p, r, p->lineno, "out of memory");
	default:
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "%s: cannot look up %s '%s': %s", key, what, s,
		    strerror(e));
	}
}

/* Returns why s is not a usable absolute path, or NULL if it is. */
static const char *
config_path_problem(const char *s)
{
	if (s[0] != '/')
		return "must be an absolute path";
	if (strlen(s) >= BOTID_MAX_PATH)
		return "path too long";
	return NULL;
}

/*
 * Returns why s could never equal a path the kernel reports for
 * /proc/PID/exe (which is absolute and normalised), or NULL.
 */
static const char *
config_exe_problem(const char *s)
{
	const char *c, *problem;
	size_t n;

	if ((problem = config_path_problem(s)) != NULL)
		return problem;
	if (strcmp(s, "/") == 0)
		return "must name a file";
	for (c = s; *c != '\0'; c += n) {
		c++;	/* the '/' */
		n = strcspn(c, "/");
		if (n == 0)
			return "must be normalised (empty component)";
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "must be normalised (no . or .. components)";
	}
	return NULL;
}

/* A bot name: 1..64 bytes of [A-Za-z0-9._-], not starting with '.'. */
static int
config_bot_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > BOTID_MAX_BOT_NAME || s[0] == '.')
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

/*
 * A unit the peer can be in: systemd's unit name characters, ending in
 * ".service" or ".scope" (agent/peer.c only ever reports those two).
 */
static int
config_unit_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_MAX_UNIT)
		return 0;
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789:_.@-\\") != n)
		return 0;
	if (n > 8 && strcmp(s + n - 8, ".service") == 0)
		return 1;
	if (n > 6 && strcmp(s + n - 6, ".scope") == 0)
		return 1;
	return 0;
}

/* A systemd credential name is a file name in $CREDENTIALS_DIRECTORY. */
static int
config_credential_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= CONFIG_MAX_CREDENTIAL && strchr(s, '/') == NULL &&
	    strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Replaces *dst with a copy of s. */
static int
config_set_string(struct config_parse *p, char **dst, const char *s)
{
	char *copy;

	if ((copy = strdup(s)) == NULL)
		return config_error(p, BOTID_ERR_ALLOC, p->lineno,
		    "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

static int
config_set_path(struct config_parse *p, const char *key, char **dst,
    const char *value)
{
	const char *problem;

	if ((problem = config_path_problem(value)) != NULL)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "%s: %s", key, problem);
	return config_set_string(p, dst, value);
}

static int
config_set_number(struct config_parse *p, const char *key, unsigned *dst,
    const char *value, unsigned long min, unsigned long max)
{
	unsigned long n;

	if (config_parse_number(value, min, max, &n) != 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "%s must be a whole number from %lu to %lu", key, min, max);
	*dst = (unsigned)n;
	return 0;
}

/*
 * socket_mode: octal permission bits. Access goes through the group
 * (socket_group), so a mode that lets every local user connect, or sets
 * setuid/setgid/sticky bits, is refused rather than trusted.
 */
static int
config_set_socket_mode(struct config_parse *p, const char *value)
{
	unsigned long mode = 0;
	const char *s;

	for (s = value; *s != '\0'; s++) {
		if (*s < '0' || *s > '7' || mode > 07777)
			break;
		mode = mode * 8 + (unsigned long)(*s - '0');
	}
	if (*value == '\0' || *s != '\0' || mode > 07777)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "socket_mode must be octal permission bits such as 0660");
	if ((mode & 07000) != 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "socket_mode %04lo sets setuid, setgid or sticky bits",
		    mode);
	if ((mode & 0007) != 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "socket_mode %04lo gives other users access; share the "
		    "socket through socket_group instead", mode);
	p->cfg->socket_mode = (mode_t)mode;
	return 0;
}

static int
config_agent_set(struct config_parse *p, const char *name, const char *value)
{
	struct botid_agent_config *cfg = p->cfg;
	const char *problem;
	unsigned long id;
	size_t k;

	for (k = 0; k < AGENT_NKEYS; k++)
		if (strcmp(name, agent_keys[k]) == 0)
			break;
	if (k == AGENT_NKEYS)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "unknown key '%s' in [agent]", name);
	/* Like a bot's allow, each admin line is one more alternative. */
	if (k == AGENT_ADMIN)
		return config_parse_allow(p, NULL, &cfg->admin,
		    &cfg->nadmin, value);
	if (p->agent_lines[k] != 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "duplicate key '%s' (first set at line %d)", name,
		    p->agent_lines[k]);
	p->agent_lines[k] = p->lineno;

	switch ((enum agent_key)k) {
	case AGENT_SOCKET:
		if ((problem = config_path_problem(value)) != NULL)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "socket: %s", problem);
		if (strlen(value) > CONFIG_SOCKET_PATH_MAX)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "socket: path longer than %zu bytes",
			    CONFIG_SOCKET_PATH_MAX);
		return config_set_string(p, &cfg->socket_path, value);
	case AGENT_SSH_SOCKET:
		if ((problem = config_path_problem(value)) != NULL)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "ssh_socket: %s", problem);
		if (strlen(value) > CONFIG_SOCKET_PATH_MAX)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "ssh_socket: path longer than %zu bytes",
			    CONFIG_SOCKET_PATH_MAX);
		return config_set_string(p, &cfg->ssh_socket_path, value);
	case AGENT_SOCKET_MODE:
		return config_set_socket_mode(p, value);
	case AGENT_SOCKET_GROUP:
		if (config_resolve_id(p, "socket_group", value, 1, &id) != 0)
			return p->r;
		cfg->socket_gid = (gid_t)id;
		return config_set_string(p, &cfg->socket_group, value);
	case AGENT_STATE_DIR:
		return config_set_path(p, name, &cfg->state_dir, value);
	case AGENT_USER:
		if (config_resolve_id(p, "user", value, 0, &id) != 0)
			return p->r;
		if (id == 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "user: '%s' is root; name an unprivileged user",
			    value);
		cfg->user_uid = (uid_t)id;
		return config_set_string(p, &cfg->user, value);
	case AGENT_RENEW_AT: {
		/* "N%": of what is left of a certificate's life on arrival. */
		char num[8];
		size_t len = strlen(value);

		if (len < 2 || len > sizeof(num) || value[len - 1] != '%')
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "renew_at must be a percentage from 10%% to 90%%");
		memcpy(num, value, len - 1);
		num[len - 1] = '\0';
		if (config_parse_number(num, 10, 90, &id) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "renew_at must be a percentage from 10%% to 90%%");
		cfg->renew_percent = (unsigned)id;
		return 0;
	}
	case AGENT_ROTATE_GRACE:
		if (config_parse_duration(value, 1, CONFIG_MAX_ROTATE_GRACE,
		    &id) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "rotate_grace must be a duration from 1s to 1d "
			    "(such as 60s or 5m)");
		cfg->rotate_grace = (unsigned)id;
		return 0;
	case AGENT_MAX_QUEUE_WAIT:
		if (config_parse_wait_ms(value, &id) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "max_queue_wait must be 0 (no bound) or a duration "
			    "from 1ms to 1h (such as 250ms, 2s or 1m)");
		cfg->max_queue_wait_ms = (unsigned)id;
		return 0;
	case AGENT_TCTI:
		return config_set_string(p, &cfg->tcti, value);
	case AGENT_EVENT_LOG:
		return config_set_path(p, name, &cfg->event_log, value);
	case AGENT_AUDIT_LOG:
		if (strcmp(value, "none") == 0) {
			free(cfg->audit_log);
			cfg->audit_log = NULL;
			return 0;
		}
		return config_set_path(p, name, &cfg->audit_log, value);
	case AGENT_MAX_CONNECTIONS:
		return config_set_number(p, name, &cfg->max_connections,
		    value, 1, BOTID_MAX_CONNECTIONS);
	case AGENT_IDLE_TIMEOUT:
		return config_set_number(p, name, &cfg->idle_timeout,
		    value, 1, 86400);
	case AGENT_MAX_CONNECTIONS_PER_UID:
		return config_set_number(p, name, &cfg->max_connections_per_uid,
		    value, 1, BOTID_MAX_CONNECTIONS);
	case AGENT_FIRST_REQUEST_TIMEOUT:
		return config_set_number(p, name, &cfg->first_request_timeout,
		    value, 1, BOTID_MAX_FIRST_REQUEST_S);
	case AGENT_TPM_LOADED_KEYS:
		return config_set_number(p, name, &cfg->tpm_loaded_keys,
		    value, 1, 64);
	case AGENT_PKCS11_SESSIONS:
		return config_set_number(p, name, &cfg->pkcs11_sessions,
		    value, 1, 64);
	case AGENT_AUDIT_CHECKPOINT_ENTRIES:
		return config_set_number(p, name,
		    &cfg->audit_checkpoint_entries, value, 1, 1000000);
	case AGENT_AUDIT_CHECKPOINT_INTERVAL:
		return config_set_number(p, name,
		    &cfg->audit_checkpoint_interval, value, 1, 86400);
	case AGENT_AUDIT_SYSLOG:
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "audit_syslog: '%s' is not yes or no", value);
		cfg->audit_syslog = strcmp(value, "yes") == 0;
		return 0;
	case AGENT_ADMIN:
	case AGENT_NKEYS:
		break;
	}
	return config_error(p, BOTID_ERR_INTERNAL, p->lineno, "internal error");
}

/*
 * Records which file exe:path names now, in the agent's mount namespace:
 * a caller is later matched on that file's identity too, because the path
 * /proc/PID/exe shows is one in the caller's namespace, which it may have
 * rearranged. A missing file is not an error (it may be installed later,
 * then a reload picks it up); config_warn_symlinks() says so.
 */
static void
config_exe_identify(struct botid_allow_term *t, const char *path)
{
	struct stat st;

	t->have_file = 0;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		t->have_file = 1;
		t->dev = st.st_dev;
		t->ino = st.st_ino;
	}
}

static void
config_free_terms(struct botid_allow_term *terms, size_t n)
{
	size_t i;

	if (terms == NULL)
		return;
	for (i = 0; i < n; i++)
		free(terms[i].text);
}

/* Parses one "kind:value" term of an allow line into *t. */
static int
config_parse_term(struct config_parse *p, const char *term,
    struct botid_allow_term *t)
{
	const char *colon, *value, *problem;
	size_t klen;

	memset(t, 0, sizeof(*t));
	if ((colon = strchr(term, ':')) == NULL)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "allow: term '%s' is not uid:, gid:, exe: or unit:", term);
	klen = (size_t)(colon - term);
	value = colon + 1;
	if (*value == '\0')
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "allow: term '%s' has no value", term);
	if (klen == 3 && strncmp(term, "uid", 3) == 0) {
		t->kind = BOTID_ALLOW_UID;
		return config_resolve_id(p, "allow", value, 0, &t->id);
	}
	if (klen == 3 && strncmp(term, "gid", 3) == 0) {
		t->kind = BOTID_ALLOW_GID;
		return config_resolve_id(p, "allow", value, 1, &t->id);
	}
	if (klen == 3 && strncmp(term, "exe", 3) == 0) {
		if ((problem = config_exe_problem(value)) != NULL)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "allow: exe:%s %s", value, problem);
		t->kind = BOTID_ALLOW_EXE;
		config_exe_identify(t, value);
		return config_set_string(p, &t->text, value);
	}
	if (klen == 4 && strncmp(term, "unit", 4) == 0) {
		if (!config_unit_valid(value))
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "allow: unit:%s is not a valid NAME.service or "
			    "NAME.scope", value);
		t->kind = BOTID_ALLOW_UNIT;
		return config_set_string(p, &t->text, value);
	}
	return config_error(p, BOTID_ERR_CONFIG, p->lineno,
	    "allow: term '%s' is not uid:, gid:, exe: or unit:", term);
}

/*
 * One allow line: terms separated by spaces, all of which must hold.
 * A caller has one uid, one executable and one unit, so naming two of
 * those in one line can never match; it is refused as the likely mistake
 * of writing alternatives on one line.
 */
static int
config_parse_allow(struct config_parse *p, const char *bot,
    struct botid_allow_rule **rulesp, size_t *nrulesp, const char *value)
{
	struct botid_allow_term terms[BOTID_MAX_ALLOW_TERMS];
	struct botid_allow_rule *rules;
	char *copy = NULL, *tok, *save = NULL;
	size_t n = 0, i, j;
	int r = BOTID_ERR_INTERNAL;

	if (*nrulesp >= BOTID_MAX_ALLOW) {
		if (bot != NULL)
			r = config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "bot '%s': more than %u allow lines", bot,
			    BOTID_MAX_ALLOW);
		else
			r = config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "more than %u admin lines", BOTID_MAX_ALLOW);
		goto out;
	}
	if ((copy = strdup(value)) == NULL) {
		r = config_error(p, BOTID_ERR_ALLOC, p->lineno, "out of memory");
		goto out;
	}
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		if (n == BOTID_MAX_ALLOW_TERMS) {
			r = config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "allow: more than %u terms in one line",
			    BOTID_MAX_ALLOW_TERMS);
			goto out;
		}
		if ((r = config_parse_term(p, tok, &terms[n])) != 0) {
			free(terms[n].text);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		r = config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "allow needs at least one term");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (terms[i].kind == BOTID_ALLOW_GID)
			continue;
		for (j = i + 1; j < n; j++) {
			if (terms[j].kind != terms[i].kind)
				continue;
			r = config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "allow: two %s terms in one line can never both "
			    "match; write alternatives as separate allow lines",
			    terms[i].kind == BOTID_ALLOW_UID ? "uid" :
			    terms[i].kind == BOTID_ALLOW_EXE ? "exe" : "unit");
			goto out;
		}
	}
	if ((rules = reallocarray(*rulesp, *nrulesp + 1,
	    sizeof(*rules))) == NULL) {
		r = config_error(p, BOTID_ERR_ALLOC, p->lineno, "out of memory");
		goto out;
	}
	*rulesp = rules;
	if ((rules[*nrulesp].terms = calloc(n, sizeof(*terms))) == NULL) {
		r = config_error(p, BOTID_ERR_ALLOC, p->lineno, "out of memory");
		goto out;
	}
	memcpy(rules[*nrulesp].terms, terms, n * sizeof(*terms));
	rules[*nrulesp].nterms = n;
	rules[*nrulesp].line = p->lineno;
	(*nrulesp)++;
	n = 0;	/* the rule owns the texts now */
	r = 0;
out:
	config_free_terms(terms, n);
	free(copy);
	return r;
}

/*
 * scopes: space-separated, each 1..BOTID_MAX_SCOPE bytes of the JWT scope
 * charset (wire_scope_valid), no duplicates. They end up in tokens, so a
 * character that would need escaping in JSON or HTTP is refused here.
 */
static int
config_parse_scopes(struct config_parse *p, struct botid_bot_config *bot,
    const char *value)
{
	const char *s = value, *end;
	size_t len, i;

	while (*(s = config_skip_space(s)) != '\0') {
		for (end = s; *end != '\0' && !config_is_space(*end); end++)
			;
		len = (size_t)(end - s);
		if (!wire_scope_valid(s, len))
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "scopes: invalid scope '%.*s': use 1 to %u of "
			    "A-Z a-z 0-9 : . _ / -", (int)(len > 80 ? 80 : len),
			    s, BOTID_MAX_SCOPE);
		for (i = 0; i < bot->nscopes; i++)
			if (strlen(bot->scopes[i]) == len &&
			    memcmp(bot->scopes[i], s, len) == 0)
				return config_error(p, BOTID_ERR_CONFIG,
				    p->lineno, "scopes: duplicate scope '%.*s'",
				    (int)len, s);
		if (bot->nscopes >= BOTID_MAX_SCOPES)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "scopes: more than %u scopes", BOTID_MAX_SCOPES);
		if (bot->scopes == NULL && (bot->scopes = calloc(
		    BOTID_MAX_SCOPES, sizeof(*bot->scopes))) == NULL)
			return config_error(p, BOTID_ERR_ALLOC, p->lineno,
			    "out of memory");
		if ((bot->scopes[bot->nscopes] = strndup(s, len)) == NULL)
			return config_error(p, BOTID_ERR_ALLOC, p->lineno,
			    "out of memory");
		bot->nscopes++;
		s = end;
	}
	return 0;
}

static int
config_bot_set(struct config_parse *p, const char *name, const char *value)
{
	struct botid_bot_config *bot = &p->cfg->bots[p->cfg->nbots - 1];
	struct bot_lines *lines = &p->bot_lines[p->cfg->nbots - 1];
	const char *problem;
	size_t k;

	for (k = 0; k < BOT_NKEYS; k++)
		if (strcmp(name, bot_keys[k]) == 0)
			break;
	if (k == BOT_NKEYS)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "unknown key '%s' in [bot %s]", name, bot->name);
	if (k != BOT_ALLOW && lines->key[k] != 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "duplicate key '%s' (first set at line %d)", name,
		    lines->key[k]);
	lines->key[k] = p->lineno;

	switch ((enum bot_key)k) {
	case BOT_BACKEND:
		if (strcmp(value, "tpm") == 0)
			bot->backend = BOTID_BACKEND_TPM;
		else if (strcmp(value, "pkcs11") == 0)
			bot->backend = BOTID_BACKEND_PKCS11;
		else
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "backend must be tpm or pkcs11, not '%s'", value);
		return 0;
	case BOT_KEY_TYPE:
		if (config_key_type_parse(value, &bot->key_type) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "key_type must be ecdsa-p256, ecdsa-p384, rsa-2048 "
			    "or rsa-3072, not '%s'", value);
		return 0;
	case BOT_MODULE:
		return config_set_path(p, name, &bot->module, value);
	case BOT_TOKEN:
		if (strlen(value) > CONFIG_MAX_TOKEN_LABEL)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "token: a PKCS#11 token label has at most %d bytes",
			    CONFIG_MAX_TOKEN_LABEL);
		return config_set_string(p, &bot->token_label, value);
	case BOT_PIN_FILE:
		if ((problem = config_path_problem(value)) != NULL)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "pin_file: %s", problem);
		return config_set_string(p, &bot->pin_file, value);
	case BOT_PIN_CREDENTIAL:
		if (!config_credential_valid(value))
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "pin_credential must be a credential name, not a "
			    "path");
		return config_set_string(p, &bot->pin_credential, value);
	case BOT_ALLOW:
		return config_parse_allow(p, bot->name, &bot->allow,
		    &bot->nallow, value);
	case BOT_SCOPES:
		return config_parse_scopes(p, bot, value);
	case BOT_MAX_TOKEN_TTL:
		return config_set_number(p, name, &bot->max_token_ttl, value,
		    1, BOTID_MAX_TOKEN_TTL);
	case BOT_ROTATE_EVERY: {
		unsigned long secs;

		if (strcmp(value, "none") == 0) {
			bot->rotate_every = 0;
			return 0;
		}
		if (config_parse_duration(value, CONFIG_MIN_ROTATE_EVERY,
		    CONFIG_MAX_ROTATE_EVERY, &secs) != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "rotate_every must be none or a duration from 10s "
			    "to 365d (such as 24h)");
		bot->rotate_every = (unsigned)secs;
		return 0;
	}
	case BOT_NKEYS:
		break;
	}
	return config_error(p, BOTID_ERR_INTERNAL, p->lineno, "internal error");
}

/* inih calls this for every "key = value" line our reader let through. */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_parse *p = user;
	const char *c;

	if (p->r != 0)
		return 0;
	/*
	 * Never echo the value: whoever wrote it meant it to be secret, and
	 * error messages end up in logs.
	 */
	if (strcmp(name, "pin") == 0 || strcmp(name, "pin_value") == 0) {
		config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "'%s': inline PINs are not allowed; use pin_file or "
		    "pin_credential", name);
		return 0;
	}
	for (c = name; *c != '\0'; c++) {
		if (config_is_ctrl((unsigned char)*c)) {
			config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "control character in key name");
			return 0;
		}
	}
	for (c = value; *c != '\0'; c++) {
		if (config_is_ctrl((unsigned char)*c)) {
			config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "control character in the value of '%s'", name);
			return 0;
		}
	}
	if (*value == '\0') {
		config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "missing value for '%s'", name);
		return 0;
	}
	switch (p->section) {
	case SECTION_AGENT:
		config_agent_set(p, name, value);
		break;
	case SECTION_BOT:
		config_bot_set(p, name, value);
		break;
	case SECTION_NONE:
		config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "key '%s' outside any section; start with [agent] or "
		    "[bot NAME]", name);
		break;
	}
	return p->r == 0;
}

/* Starts a [bot NAME] section. */
static int
config_bot_begin(struct config_parse *p, const char *name)
{
	struct botid_agent_config *cfg = p->cfg;
	struct botid_bot_config *bots;
	struct bot_lines *lines;
	size_t i, ncap;

	if (!config_bot_name_valid(name))
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "invalid bot name '%s': use 1 to %u of A-Z a-z 0-9 . _ -, "
		    "not starting with '.'", name, BOTID_MAX_BOT_NAME);
	for (i = 0; i < cfg->nbots; i++)
		if (strcmp(cfg->bots[i].name, name) == 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "duplicate bot '%s' (first defined at line %d)",
			    name, cfg->bots[i].line);
	if (cfg->nbots >= BOTID_MAX_BOTS)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "more than %u bots", BOTID_MAX_BOTS);
	if (cfg->nbots == p->botcap) {
		ncap = p->botcap == 0 ? 8 : p->botcap * 2;
		if (ncap > BOTID_MAX_BOTS)
			ncap = BOTID_MAX_BOTS;
		/* Both arrays grow before botcap does: a failure leaves
		 * them merely larger than recorded. */
		if ((bots = reallocarray(cfg->bots, ncap,
		    sizeof(*bots))) == NULL)
			return config_error(p, BOTID_ERR_ALLOC, p->lineno,
			    "out of memory");
		cfg->bots = bots;
		if ((lines = reallocarray(p->bot_lines, ncap,
		    sizeof(*lines))) == NULL)
			return config_error(p, BOTID_ERR_ALLOC, p->lineno,
			    "out of memory");
		p->bot_lines = lines;
		p->botcap = ncap;
	}
	memset(&cfg->bots[cfg->nbots], 0, sizeof(cfg->bots[cfg->nbots]));
	memset(&p->bot_lines[cfg->nbots], 0, sizeof(p->bot_lines[0]));
	if ((cfg->bots[cfg->nbots].name = strdup(name)) == NULL)
		return config_error(p, BOTID_ERR_ALLOC, p->lineno,
		    "out of memory");
	cfg->bots[cfg->nbots].key_type = BOTID_KEY_ECDSA_P256;
	cfg->bots[cfg->nbots].max_token_ttl = BOTID_DEFAULT_TOKEN_TTL;
	cfg->bots[cfg->nbots].line = p->lineno;
	cfg->nbots++;
	p->section = SECTION_BOT;
	return 0;
}

/*
 * A section header, s pointing at its '['. inih would cut the name at
 * 50 bytes and ignore text after ']', so the header is parsed here and
 * inih's copy of the section name is never used.
 */
static int
config_section_begin(struct config_parse *p, const char *s)
{
	char name[256];
	const char *end, *after;
	size_t len;

	p->key_in_section = 0;
	if ((end = strchr(s, ']')) == NULL)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "missing ']' in section header");
	after = config_skip_space(end + 1);
	if (*after != '\0' && *after != ';' && *after != '#')
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "unexpected text after section header");
	s = config_skip_space(s + 1);
	len = (size_t)(end - s);
	while (len > 0 && config_is_space(s[len - 1]))
		len--;
	if (len >= sizeof(name))
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "section name too long");
	memcpy(name, s, len);
	name[len] = '\0';
	if (strcmp(name, "agent") == 0) {
		if (p->agent_line != 0)
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "duplicate [agent] section (first at line %d)",
			    p->agent_line);
		p->agent_line = p->lineno;
		p->section = SECTION_AGENT;
		return 0;
	}
	if (strcmp(name, "bot") == 0)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "missing bot name in [bot NAME]");
	if (strncmp(name, "bot", 3) == 0 && config_is_space(name[3]))
		return config_bot_begin(p, config_skip_space(name + 3));
	return config_error(p, BOTID_ERR_CONFIG, p->lineno,
	    "unknown section [%s]", name);
}

/*
 * Classifies one line the way inih will, before inih sees it, and refuses
 * what inih would accept with a meaning the writer did not intend.
 */
static int
config_check_line(struct config_parse *p, const char *line, size_t len)
{
	const char *s = line;
	size_t i, name_len;
	int indented, was_space;

	for (i = 0; i < len; i++)
		if (line[i] != '\t' && config_is_ctrl((unsigned char)line[i]))
			return config_error(p, BOTID_ERR_CONFIG, p->lineno,
			    "control character in line");
	if (p->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;	/* inih skips a UTF-8 byte order mark */
	indented = config_is_space(*s);
	s = config_skip_space(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return config_section_begin(p, s);
	/* inih glues an indented line onto the previous key's value. */
	if (indented && p->key_in_section)
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "indented line would continue the previous value; "
		    "continuation lines are not supported");
	/* As inih: '=' or ':' ends the name; " ;" starts a comment. */
	was_space = 0;
	for (i = 0; s[i] != '\0' && s[i] != '=' && s[i] != ':'; i++) {
		if (was_space && s[i] == ';')
			break;
		was_space = config_is_space(s[i]);
	}
	if (s[i] != '=' && s[i] != ':')
		return config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "expected 'key = value'");
	name_len = i;
	while (name_len > 0 && config_is_space(s[name_len - 1]))
		name_len--;
	p->key_in_section = name_len > 0;
	return 0;
}

/*
 * inih's line source: hands over exactly one line per call so that our
 * count is the line number, refuses a line that would not fit inih's
 * buffer (inih would parse it as two lines), and checks it first.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	const uint8_t *data;
	size_t avail, len, content;

	if (p->r != 0 || (avail = buf_len(&p->file)) == 0)
		return NULL;
	if (num < 4) {
		config_error(p, BOTID_ERR_INTERNAL, 0, "inih line buffer "
		    "too small");
		return NULL;
	}
	data = buf_ptr(&p->file);
	for (len = 0; len < avail && data[len] != '\n'; len++)
		;
	content = len;
	if (len < avail)
		len++;	/* the '\n' */
	if (content > 0 && data[content - 1] == '\r')
		content--;
	p->lineno++;
	/* inih needs room for "\r\n\0" after the content. */
	if (content > (size_t)num - 3) {
		config_error(p, BOTID_ERR_CONFIG, p->lineno,
		    "line longer than %d bytes", num - 3);
		return NULL;
	}
	memcpy(str, data, content);
	str[content] = '\0';
	if (buf_consume(&p->file, len) != 0) {
		config_error(p, BOTID_ERR_INTERNAL, p->lineno,
		    "internal error");
		return NULL;
	}
	if (config_check_line(p, str, content) != 0)
		return NULL;
	return str;
}

/* Reads the whole file, refusing anything but a modest regular file. */
static int
config_read_file(struct config_parse *p)
{
	struct stat st;
	char chunk[4096];
	ssize_t n;
	int fd = -1, r = BOTID_ERR_INTERNAL;

	/* O_NONBLOCK: a FIFO must not hang the agent in open(2). */
	if ((fd = open(p->path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1 || fstat(fd, &st) == -1) {
		r = config_error(p, BOTID_ERR_IO, 0, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = config_error(p, BOTID_ERR_CONFIG, 0,
		    "not a regular file");
		goto out;
	}
	/* The file decides who may use every key: refuse one anyone
	 * could have edited. */
	if ((st.st_mode & S_IWOTH) != 0) {
		r = config_error(p, BOTID_ERR_CONFIG, 0,
		    "writable by other users; refusing to trust it");
		goto out;
	}
	/*
	 * Started as root, the agent acts on it as root (the user it
	 * becomes, the state it hands over): only root may have written it.
	 */
	if (geteuid() == 0 && st.st_uid != 0) {
		r = config_error(p, BOTID_ERR_CONFIG, 0, "owned by uid %lu, "
		    "not root; refusing to trust it as root",
		    (unsigned long)st.st_uid);
		goto out;
	}
	if (geteuid() == 0 && (st.st_mode & S_IWGRP) != 0) {
		r = config_error(p, BOTID_ERR_CONFIG, 0, "writable by its "
		    "group; refusing to trust it as root");
		goto out;
	}
	if (st.st_size > (off_t)BOTID_MAX_CONFIG_FILE) {
		r = config_error(p, BOTID_ERR_CONFIG, 0,
		    "larger than %u bytes", BOTID_MAX_CONFIG_FILE);
		goto out;
	}
	for (;;) {
		if ((n = read(fd, chunk, sizeof(chunk))) == -1) {
			if (errno == EINTR)
				continue;
			r = config_error(p, BOTID_ERR_IO, 0, "%s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		/* The file may have grown since fstat(). */
		if ((r = buf_put(&p->file, chunk, (size_t)n)) != 0) {
			r = r == BOTID_ERR_TOO_LARGE ?
			    config_error(p, BOTID_ERR_CONFIG, 0,
			    "larger than %u bytes", BOTID_MAX_CONFIG_FILE) :
			    config_error(p, BOTID_ERR_ALLOC, 0,
			    "out of memory");
			goto out;
		}
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

static int
config_defaults(struct config_parse *p)
{
	struct botid_agent_config *cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return config_error(p, BOTID_ERR_ALLOC, 0, "out of memory");
	p->cfg = cfg;
	cfg->socket_mode = CONFIG_DEFAULT_SOCKET_MODE;
	cfg->max_connections = CONFIG_DEFAULT_CONNECTIONS;
	cfg->idle_timeout = BOTID_IDLE_TIMEOUT_S;
	cfg->max_connections_per_uid = BOTID_DEFAULT_CONNECTIONS_PER_UID;
	cfg->first_request_timeout = BOTID_FIRST_REQUEST_TIMEOUT_S;
	cfg->tpm_loaded_keys = CONFIG_DEFAULT_TPM_KEYS;
	cfg->pkcs11_sessions = CONFIG_DEFAULT_SESSIONS;
	cfg->max_queue_wait_ms = BOTID_DEFAULT_QUEUE_WAIT_MS;
	cfg->renew_percent = CONFIG_DEFAULT_RENEW_PERCENT;
	cfg->rotate_grace = CONFIG_DEFAULT_ROTATE_GRACE;
	cfg->refs = 1;
	cfg->audit_checkpoint_entries = CONFIG_DEFAULT_CHECKPOINT_ENTRIES;
	cfg->audit_checkpoint_interval = CONFIG_DEFAULT_CHECKPOINT_INTERVAL;
	if ((cfg->path = strdup(p->path)) == NULL ||
	    (cfg->socket_path = strdup(CONFIG_DEFAULT_SOCKET)) == NULL ||
	    (cfg->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR)) == NULL ||
	    (cfg->audit_log = strdup(CONFIG_DEFAULT_AUDIT_LOG)) == NULL ||
	    (cfg->event_log = strdup(CONFIG_DEFAULT_EVENT_LOG)) == NULL)
		return config_error(p, BOTID_ERR_ALLOC, 0, "out of memory");
	return 0;
}

/* Checks each bot as a whole, once every key of it has been read. */
static int
config_check_bots(struct config_parse *p)
{
	static const enum bot_key pkcs11_only[] = {
		BOT_MODULE, BOT_TOKEN, BOT_PIN_FILE, BOT_PIN_CREDENTIAL,
	};
	const struct botid_bot_config *bot;
	const struct bot_lines *lines;
	size_t i, k;

	for (i = 0; i < p->cfg->nbots; i++) {
		bot = &p->cfg->bots[i];
		lines = &p->bot_lines[i];
		if (bot->backend == 0)
			return config_error(p, BOTID_ERR_CONFIG, bot->line,
			    "bot '%s': missing backend (tpm or pkcs11)",
			    bot->name);
		if (bot->backend == BOTID_BACKEND_TPM) {
			for (k = 0; k < sizeof(pkcs11_only) /
			    sizeof(pkcs11_only[0]); k++) {
				if (lines->key[pkcs11_only[k]] == 0)
					continue;
				return config_error(p, BOTID_ERR_CONFIG,
				    lines->key[pkcs11_only[k]],
				    "bot '%s': '%s' applies only to pkcs11 "
				    "bots", bot->name, bot_keys[pkcs11_only[k]]);
			}
			continue;
		}
		if (bot->module == NULL)
			return config_error(p, BOTID_ERR_CONFIG, bot->line,
			    "bot '%s': a pkcs11 bot needs 'module'", bot->name);
		if (bot->token_label == NULL)
			return config_error(p, BOTID_ERR_CONFIG, bot->line,
			    "bot '%s': a pkcs11 bot needs 'token'", bot->name);
		if (bot->pin_file != NULL && bot->pin_credential != NULL)
			return config_error(p, BOTID_ERR_CONFIG,
			    lines->key[BOT_PIN_FILE] >
			    lines->key[BOT_PIN_CREDENTIAL] ?
			    lines->key[BOT_PIN_FILE] :
			    lines->key[BOT_PIN_CREDENTIAL],
			    "bot '%s': set pin_file or pin_credential, not both",
			    bot->name);
		if (bot->pin_file == NULL && bot->pin_credential == NULL)
			return config_error(p, BOTID_ERR_CONFIG, bot->line,
			    "bot '%s': a pkcs11 bot needs pin_file or "
			    "pin_credential", bot->name);
	}
	return 0;
}

/*
 * An exe: rule is compared with the kernel's resolved path, so a symlink
 * (/usr/bin/python3 -> python3.11) can never match. Only a warning: the
 * file may be installed after the agent starts.
 */
static void
config_warn_symlinks(const struct botid_agent_config *cfg)
{
	const struct botid_allow_term *t;
	char *real;
	size_t i, j, k;

	for (i = 0; i < cfg->nbots; i++) {
		for (j = 0; j < cfg->bots[i].nallow; j++) {
			for (k = 0; k < cfg->bots[i].allow[j].nterms; k++) {
				t = &cfg->bots[i].allow[j].terms[k];
				if (t->kind == BOTID_ALLOW_EXE &&
				    !t->have_file)
					log_warn("%s:%d: exe:%s is not a regular "
					    "file now and matches nobody until "
					    "a reload finds it", cfg->path,
					    cfg->bots[i].allow[j].line, t->text);
				if (t->kind != BOTID_ALLOW_EXE ||
				    (real = realpath(t->text, NULL)) == NULL)
					continue;
				if (strcmp(real, t->text) != 0)
					log_warn("%s:%d: exe:%s resolves to %s "
					    "and will never match; name the "
					    "resolved path", cfg->path,
					    cfg->bots[i].allow[j].line,
					    t->text, real);
				free(real);
			}
		}
	}
}

int
config_load(const char *path, struct botid_agent_config **cfgp,
    char *err, size_t errlen)
{
	struct config_parse p;
	int r = BOTID_ERR_INTERNAL, ir;

	*cfgp = NULL;
	if (errlen > 0)
		err[0] = '\0';
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.err = err;
	p.errlen = errlen;
	buf_init(&p.file, BOTID_MAX_CONFIG_FILE);
	if ((r = config_read_file(&p)) != 0 ||
	    (r = config_defaults(&p)) != 0)
		goto out;
	ir = ini_parse_stream(config_reader, &p, config_handler, &p);
	if (p.r != 0) {
		r = p.r;
		goto out;
	}
	/* Our reader should have caught every line inih dislikes. */
	if (ir == -2) {
		r = config_error(&p, BOTID_ERR_ALLOC, 0, "out of memory");
		goto out;
	}
	if (ir != 0) {
		r = config_error(&p, BOTID_ERR_CONFIG, ir, "syntax error");
		goto out;
	}
	if ((r = config_check_bots(&p)) != 0)
		goto out;
	config_warn_symlinks(p.cfg);
	*cfgp = p.cfg;
	p.cfg = NULL;
	r = 0;
out:
	config_free(p.cfg);
	free(p.bot_lines);
	buf_reset(&p.file);
	return r;
}

struct botid_agent_config *
config_ref(struct botid_agent_config *cfg)
{
	cfg->refs++;
	return cfg;
}

void
config_free(struct botid_agent_config *cfg)
{
	struct botid_bot_config *bot;
	size_t i, j;

	if (cfg == NULL || --cfg->refs > 0)
		return;
	for (i = 0; i < cfg->nbots; i++) {
		bot = &cfg->bots[i];
		free(bot->name);
		free(bot->module);
		free(bot->token_label);
		free(bot->pin_file);
		free(bot->pin_credential);
		for (j = 0; j < bot->nallow; j++) {
			config_free_terms(bot->allow[j].terms,
			    bot->allow[j].nterms);
			free(bot->allow[j].terms);
		}
		free(bot->allow);
		for (j = 0; j < bot->nscopes; j++)
			free(bot->scopes[j]);
		free(bot->scopes);
	}
	free(cfg->bots);
	for (j = 0; j < cfg->nadmin; j++) {
		config_free_terms(cfg->admin[j].terms, cfg->admin[j].nterms);
		free(cfg->admin[j].terms);
	}
	free(cfg->admin);
	free(cfg->path);
	free(cfg->socket_path);
	free(cfg->ssh_socket_path);
	free(cfg->socket_group);
	free(cfg->user);
	free(cfg->state_dir);
	free(cfg->tcti);
	free(cfg->audit_log);
	free(cfg->event_log);
	free(cfg);
}

const struct botid_bot_config *
config_find_bot(const struct botid_agent_config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->nbots; i++)
		if (strcmp(cfg->bots[i].name, name) == 0)
			return &cfg->bots[i];
	return NULL;
}

const char *
config_key_type_name(enum botid_key_type t)
{
	size_t i;

	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (key_types[i].type == t)
			return key_types[i].name;
	return NULL;
}

const char *
config_backend_name(enum botid_backend_kind k)
{
	switch (k) {
	case BOTID_BACKEND_TPM:
		return "tpm";
	case BOTID_BACKEND_PKCS11:
		return "pkcs11";
	}
	return NULL;
}

int
config_key_type_parse(const char *s, enum botid_key_type *t)
{
	size_t i;

	*t = 0;
	if (s == NULL)
		return BOTID_ERR_INVALID;
	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
		if (strcmp(key_types[i].name, s) == 0) {
			*t = key_types[i].type;
			return 0;
		}
	}
	return BOTID_ERR_INVALID;
}
