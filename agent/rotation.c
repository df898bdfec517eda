/*
 * Rotation state files (rotation.h). JSON through jansson: every member
 * is checked for type and range, unknown members are refused, so a
 * damaged file is named in the log instead of steering key destruction.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/backend.h"
#include "agent/rotation.h"
#include "lib/error.h"
#include "lib/file.h"
#include "lib/log.h"

#define KEYS_SUBDIR		"keys"
#define STATE_SUFFIX		".json"
#define STATE_MAX		(16u * 1024u)
#define LOCK_SUFFIX		".lock"	/* after a '.': rotation_list skips it */

static int
state_path(const char *state_dir, const char *bot, char **path)
{
	if (asprintf(path, "%s/%s/%s%s", state_dir, KEYS_SUBDIR, bot,
	    STATE_SUFFIX) == -1) {
		*path = NULL;
		return BOTID_ERR_ALLOC;
	}
	return 0;
}

void
rotation_key_name(const char *bot, uint32_t gen,
    char name[BOTID_MAX_KEY_NAME + 1])
{
	if (gen == 0)
		snprintf(name, BOTID_MAX_KEY_NAME + 1, "%s", bot);
	else
		snprintf(name, BOTID_MAX_KEY_NAME + 1, "%s~%u", bot,
		    (unsigned)gen);
}

void
rotation_key_config(const struct rotation_state *st, uint32_t gen,
    char name[BOTID_MAX_KEY_NAME + 1], struct botid_bot_config *cfg)
{
	rotation_key_name(st->bot, gen, name);
	memset(cfg, 0, sizeof(*cfg));
	cfg->name = name;
	cfg->backend = st->backend;
	cfg->key_type = st->key_type;
	cfg->module = st->module;
	cfg->token_label = st->token_label;
	cfg->pin_file = st->pin_file;
	cfg->pin_credential = st->pin_credential;
}

void
rotation_free(struct rotation_state *st)
{
	free(st->module);
	free(st->token_label);
	free(st->pin_file);
	free(st->pin_credential);
	memset(st, 0, sizeof(*st));
}

static int
dup_opt(const char *s, char **dst)
{
	*dst = NULL;
	if (s != NULL && (*dst = strdup(s)) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

int
rotation_init(const struct botid_bot_config *cfg, struct rotation_state *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->bot, sizeof(st->bot), "%s", cfg->name);
	st->backend = cfg->backend;
	st->key_type = cfg->key_type;
	if (dup_opt(cfg->module, &st->module) != 0 ||
	    dup_opt(cfg->token_label, &st->token_label) != 0 ||
	    dup_opt(cfg->pin_file, &st->pin_file) != 0 ||
	    dup_opt(cfg->pin_credential, &st->pin_credential) != 0) {
		rotation_free(st);
		return BOTID_ERR_ALLOC;
	}
	return 0;
}

/* An optional string member: absent or null is NULL. */
static int
get_opt_str(json_t *o, const char *key, char **dst)
{
	json_t *v = json_object_get(o, key);

	*dst = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) >
	    BOTID_MAX_PATH)
		return BOTID_ERR_INVALID;
	return dup_opt(json_string_value(v), dst);
}

static int
get_u32(json_t *o, const char *key, uint32_t *dst)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return BOTID_ERR_INVALID;
	*dst = (uint32_t)json_integer_value(v);
	return 0;
}

static int
get_time(json_t *o, const char *key, time_t *dst)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return BOTID_ERR_INVALID;
	*dst = (time_t)json_integer_value(v);
	return 0;
}

static int
members_known(json_t *o, const char *const *known)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(o, key, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return BOTID_ERR_INVALID;
	}
	return 0;
}

static int
state_decode(json_t *root, const char *bot, struct rotation_state *st)
{
	static const char *const top[] = { "bot", "backend", "key_type",
	    "module", "token", "pin_file", "pin_credential", "gen", "created",
	    "pending", "retired", "removed", NULL };
	static const char *const ret[] = { "gen", "serial", "destroy_after",
	    "destroyed", NULL };
	json_t *v, *a, *e;
	const char *s;
	size_t i;
	int r = BOTID_ERR_INVALID;

	if (!json_is_object(root) || members_known(root, top) != 0)
		goto out;
	v = json_object_get(root, "bot");
	if (!json_is_string(v) || strcmp(json_string_value(v), bot) != 0)
		goto out;
	snprintf(st->bot, sizeof(st->bot), "%s", bot);
	v = json_object_get(root, "backend");
	s = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(s, "tpm") == 0)
		st->backend = BOTID_BACKEND_TPM;
	else if (strcmp(s, "pkcs11") == 0)
		st->backend = BOTID_BACKEND_PKCS11;
	else
		goto out;
	v = json_object_get(root, "key_type");
	if (!json_is_string(v) ||
	    config_key_type_parse(json_string_value(v), &st->key_type) != 0)
		goto out;
	if ((r = get_opt_str(root, "module", &st->module)) != 0 ||
	    (r = get_opt_str(root, "token", &st->token_label)) != 0 ||
	    (r = get_opt_str(root, "pin_file", &st->pin_file)) != 0 ||
	    (r = get_opt_str(root, "pin_credential", &st->pin_credential)) != 0)
		goto out;
	r = BOTID_ERR_INVALID;
	if (st->backend == BOTID_BACKEND_PKCS11 && (st->module == NULL ||
	    st->token_label == NULL ||
	    (st->pin_file == NULL) == (st->pin_credential == NULL)))
		goto out;
	if (get_u32(root, "gen", &st->gen) != 0 ||
	    get_time(root, "created", &st->created) != 0 ||
	    get_u32(root, "pending", &st->pending) != 0)
		goto out;
	if (st->pending != 0 && st->pending <= st->gen)
		goto out;
	v = json_object_get(root, "removed");
	if (v != NULL && !json_is_boolean(v))
		goto out;
	st->removed = json_is_true(v);
	a = json_object_get(root, "retired");
	/* The extra entry is the current key of a removed bot, no other. */
	if (!json_is_array(a) || json_array_size(a) > rotation_retired_max(st))
		goto out;
	json_array_foreach(a, i, e) {
		struct rotation_retired *rt = &st->retired[i];

		if (!json_is_object(e) || members_known(e, ret) != 0 ||
		    get_u32(e, "gen", &rt->gen) != 0 ||
		    (rt->gen >= st->gen && !(st->removed && rt->gen == st->gen)) ||
		    get_time(e, "destroy_after", &rt->destroy_after) != 0)
			goto out;
		v = json_object_get(e, "serial");
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) >= sizeof(rt->serial) ||
		    strspn(json_string_value(v), "0123456789ABCDEFabcdef") !=
		    strlen(json_string_value(v)))
			goto out;
		snprintf(rt->serial, sizeof(rt->serial), "%s",
		    json_string_value(v));
		v = json_object_get(e, "destroyed");
		if (!json_is_boolean(v))
			goto out;
		rt->destroyed = json_is_true(v);
		st->nretired++;
	}
	r = 0;
 out:
	return r;
}

int
rotation_load(const char *state_dir, const char *bot,
    struct rotation_state *st)
{
	json_error_t jerr;
	struct stat sb;
	json_t *root = NULL;
	uint8_t *data = NULL;
	char *path = NULL;
	size_t len = 0;
	int r;

	memset(st, 0, sizeof(*st));
	if ((r = state_path(state_dir, bot, &path)) != 0)
		goto out;
	/*
	 * It names a PKCS#11 module to load for a removed bot: only a file
	 * the agent wrote, that no one else may change, is believed.
	 */
	if (lstat(path, &sb) == 0 && (!S_ISREG(sb.st_mode) ||
	    sb.st_uid != geteuid() || (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)) {
		log_err("%s: refusing: not a regular file owned by uid %lu and "
		    "writable by it alone", path, (unsigned long)geteuid());
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((r = file_read(path, STATE_MAX, &data, &len)) != 0) {
		if (r != BOTID_ERR_NOT_FOUND)
			log_err("%s: cannot read: %s", path, botid_strerror(r));
		goto out;
	}
	if ((root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		log_err("%s: not JSON: %s", path, jerr.text);
		r = BOTID_ERR_INVALID;
		goto out;
	}
	if ((r = state_decode(root, bot, st)) != 0) {
		log_err("%s: not a key rotation state for bot %s", path, bot);
		rotation_free(st);
		goto out;
	}
	r = 0;
 out:
	json_decref(root);
	free(data);
	free(path);
	return r;
}

int
rotation_save(const char *state_dir, const struct rotation_state *st)
{
	json_t *root = NULL, *a = NULL, *e;
	char *path = NULL, *dir = NULL, *text = NULL;
	size_t i;
	int r = BOTID_ERR_ALLOC;

	if (asprintf(&dir, "%s/%s", state_dir, KEYS_SUBDIR) == -1) {
		dir = NULL;
		goto out;
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_err("%s: %s", dir, strerror(errno));
		r = BOTID_ERR_IO;
		goto out;
	}
	if ((r = state_path(state_dir, st->bot, &path)) != 0)
		goto out;
	r = BOTID_ERR_ALLOC;
	if ((a = json_array()) == NULL)
		goto out;
	for (i = 0; i < st->nretired; i++) {
		if ((e = json_pack("{s:I, s:s, s:I, s:b}",
		    "gen", (json_int_t)st->retired[i].gen,
		    "serial", st->retired[i].serial,
		    "destroy_after", (json_int_t)st->retired[i].destroy_after,
		    "destroyed", st->retired[i].destroyed)) == NULL ||
		    json_array_append_new(a, e) != 0)
			goto out;
	}
	if ((root = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I, "
	    "s:I, s:I, s:O, s:b}", "bot", st->bot,
	    "backend", st->backend == BOTID_BACKEND_TPM ? "tpm" : "pkcs11",
	    "key_type", config_key_type_name(st->key_type),
	    "module", st->module, "token", st->token_label,
	    "pin_file", st->pin_file, "pin_credential", st->pin_credential,
	    "gen", (json_int_t)st->gen, "created", (json_int_t)st->created,
	    "pending", (json_int_t)st->pending, "retired", a,
	    "removed", st->removed)) == NULL)
		goto out;
	if ((text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL)
		goto out;
	if ((r = file_write_atomic(path, text, strlen(text), 0600)) != 0) {
		log_err("bot '%s': %s: cannot write its key state: %s", st->bot,
		    path, r == BOTID_ERR_IO ? strerror(errno) :
		    botid_strerror(r));
		goto out;
	}
	r = 0;
 out:
	json_decref(root);
	json_decref(a);
	free(text);
	free(path);
	free(dir);
	return r;
}

int
rotation_remove(const char *state_dir, const char *bot)
{
	char *path = NULL;
	int r;

	if ((r = state_path(state_dir, bot, &path)) != 0)
		return r;
	if (unlink(path) == -1 && errno != ENOENT) {
		log_err("%s: %s", path, strerror(errno));
		r = BOTID_ERR_IO;
	}
	free(path);
	return r;
}

int
rotation_list(const char *state_dir, char ***namesp, size_t *np)
{
	char **names = NULL, **n2, *dir = NULL;
	struct dirent *de;
	DIR *d = NULL;
	size_t n = 0, len, i;
	int r = BOTID_ERR_ALLOC;

	*namesp = NULL;
	*np = 0;
	if (asprintf(&dir, "%s/%s", state_dir, KEYS_SUBDIR) == -1) {
		dir = NULL;
		goto out;
	}
	if ((d = opendir(dir)) == NULL) {
		r = errno == ENOENT ? 0 : BOTID_ERR_IO;
		if (r != 0)
			log_err("%s: %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= strlen(STATE_SUFFIX) ||
		    strcmp(de->d_name + len - strlen(STATE_SUFFIX),
		    STATE_SUFFIX) != 0 ||
		    len - strlen(STATE_SUFFIX) > BOTID_MAX_BOT_NAME)
			continue;
		if (n == BOTID_MAX_BOTS * 2)
			break;
		if ((n2 = reallocarray(names, n + 1, sizeof(*names))) == NULL)
			goto out;
		names = n2;
		if ((names[n] = strndup(de->d_name,
		    len - strlen(STATE_SUFFIX))) == NULL)
			goto out;
		n++;
	}
	*namesp = names;
	*np = n;
	names = NULL;
	n = 0;
	r = 0;
 out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d != NULL)
		closedir(d);
	free(dir);
	return r;
}

int
rotation_key_remove(struct botid_backend *be, const struct botid_bot_config *kc)
{
	struct botid_bot_config tc;
	char name[BOTID_MAX_KEY_NAME + 1];
	int r, rt;

	r = be->ops->key_remove(be, kc);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		return r;
	if ((size_t)snprintf(name, sizeof(name), "%s%s", kc->name,
	    BOTID_TOKEN_KEY_SUFFIX) >= sizeof(name))
		return r;	/* too long to have a token key */
	tc = *kc;
	tc.name = name;
	rt = be->ops->key_remove(be, &tc);
	return rt != 0 && rt != BOTID_ERR_NOT_FOUND ? rt : r;
}

int
rotation_lock(const char *state_dir, const char *bot, int wait, int *fdp)
{
	char *dir = NULL, *path = NULL;
	int fd = -1, r = BOTID_ERR_ALLOC;

	*fdp = -1;
	if (asprintf(&dir, "%s/%s", state_dir, KEYS_SUBDIR) == -1) {
		dir = NULL;
		goto out;
	}
	if (asprintf(&path, "%s/.%s%s", dir, bot, LOCK_SUFFIX) == -1) {
		path = NULL;
		goto out;
	}
	r = BOTID_ERR_IO;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_err("%s: %s", dir, strerror(errno));
		goto out;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0600)) == -1) {
		log_err("%s: %s", path, strerror(errno));
		goto out;
	}
	/* Per open file: two threads of this process exclude each other. */
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) == -1) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			r = BOTID_ERR_BUSY;
			goto out;
		}
		log_err("%s: flock: %s", path, strerror(errno));
		goto out;
	}
	*fdp = fd;
	fd = -1;
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	free(dir);
	free(path);
	return r;
}

void
rotation_unlock(int fd)
{
	if (fd != -1)
		close(fd);	/* releases the flock */
}

size_t
rotation_retired_max(const struct rotation_state *st)
{
	return st->removed ? ROTATION_MAX_RETIRED + 1 : ROTATION_MAX_RETIRED;
}

int
rotation_retired_add(struct rotation_state *st, size_t limit,
    struct rotation_retired **rt)
{
	*rt = NULL;
	/* A caller asking for more than the array holds is a bug. */
	if (limit > sizeof(st->retired) / sizeof(st->retired[0]))
		return BOTID_ERR_INTERNAL;
	if (st->nretired >= limit)
		return BOTID_ERR_BUSY;
	*rt = &st->retired[st->nretired++];
	memset(*rt, 0, sizeof(**rt));
	return 0;
}

int
rotation_destroy_all(struct rotation_state *st, struct botid_backend *be,
    const char *serial)
{
	struct botid_bot_config kc;
	struct rotation_retired *rt;
	char name[BOTID_MAX_KEY_NAME + 1];
	size_t i;
	int r;

	/* Room to retire the current key, checked before anything goes. */
	if (!st->removed && st->nretired >= ROTATION_MAX_RETIRED + 1) {
		log_err("bot %s: %zu retired keys still wait for their "
		    "certificates' revocation: no room to retire the current "
		    "key, left as it is", st->bot, st->nretired);
		return BOTID_ERR_BUSY;
	}
	if (st->pending != 0) {
		rotation_key_config(st, st->pending, name, &kc);
		if ((r = rotation_key_remove(be, &kc)) != 0 &&
		    r != BOTID_ERR_NOT_FOUND)
			return r;
		st->pending = 0;
	}
	for (i = 0; i < st->nretired; i++) {
		rt = &st->retired[i];
		if (rt->destroyed)
			continue;
		rotation_key_config(st, rt->gen, name, &kc);
		if ((r = rotation_key_remove(be, &kc)) != 0 &&
		    r != BOTID_ERR_NOT_FOUND)
			return r;
		rt->destroyed = 1;
		rt->destroy_after = 0;
	}
	if (!st->removed) {
		rotation_key_config(st, st->gen, name, &kc);
		if ((r = rotation_key_remove(be, &kc)) != 0 &&
		    r != BOTID_ERR_NOT_FOUND)
			return r;
		if ((r = rotation_retired_add(st, ROTATION_MAX_RETIRED + 1,
		    &rt)) != 0)
			return r;
		rt->gen = st->gen;
		snprintf(rt->serial, sizeof(rt->serial), "%s", serial);
		rt->destroyed = 1;
		st->removed = 1;
	}
	return 0;
}

int
rotation_cached_serial(const char *state_dir, const char *bot, char *serial,
    size_t len)
{
	BIO *bio = NULL;
	X509 *x = NULL;
	BIGNUM *bn = NULL;
	char *path = NULL, *hex = NULL;
	int r = BOTID_ERR_NOT_FOUND;

	serial[0] = '\0';
	if (asprintf(&path, "%s/certs/%s.pem", state_dir, bot) == -1) {
		path = NULL;
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	/* Our own public file, written by the renewer; still size-capped. */
	if ((bio = BIO_new_file(path, "r")) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL || strlen(hex) >= len)
		goto out;
	snprintf(serial, len, "%s", hex);
	r = 0;
 out:
	ERR_clear_error();
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	BIO_free(bio);
	free(path);
	return r;
}

void
rotation_uncache(const char *state_dir, const char *bot)
{
	char *path = NULL;

	if (asprintf(&path, "%s/certs/%s.pem", state_dir, bot) == -1)
		return;
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("%s: %s", path, strerror(errno));
	free(path);
	/* The token key's chain goes with the bot's. */
	if (asprintf(&path, "%s/certs/%s%s.pem", state_dir, bot,
	    BOTID_TOKEN_KEY_SUFFIX) == -1)
		return;
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("%s: %s", path, strerror(errno));
	free(path);
}

void
rotation_pause_point(const char *step, const char *bot)
{
	const char *at = getenv("BOTID_TEST_PAUSE_AT");
	const char *file = getenv("BOTID_TEST_PAUSE_FILE");
	size_t n = strlen(step);
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	if (at == NULL || file == NULL || strncmp(at, step, n) != 0 ||
	    at[n] != ':' || strcmp(at + n + 1, bot) != 0)
		return;
	log_warn("BOTID_TEST_PAUSE_AT=%s: waiting for %s", at, file);
	while (access(file, F_OK) != 0)
		(void)nanosleep(&ts, NULL);
	log_warn("BOTID_TEST_PAUSE_AT=%s: going on", at);
}

void
rotation_crash_point(const char *step)
{
	const char *at = getenv("BOTID_TEST_CRASH_AT");

	if (at != NULL && strcmp(at, step) == 0) {
		log_warn("BOTID_TEST_CRASH_AT=%s: killing myself here", step);
		(void)raise(SIGKILL);
	}
}
