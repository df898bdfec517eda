/*
 * Registry of served bots. Backends and keys are reference counted so a
 * reload reuses an open TPM or token (a bare swtpm accepts one connection
 * at a time, and a PKCS#11 module is initialised once per process) and
 * keeps in-flight jobs valid while the old registry drains.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/registry.h"
#include "agent/rotation.h"
#include "attest/host-state.h"
#include "lib/error.h"
#include "lib/log.h"

struct botid_backend_ref {
	int				 refs;
	char				*ident;	/* what makes two backends the same */
	struct botid_backend		*be;
	struct botid_pool		*pool;
	int				 attest_keys; /* AK, host key handed over */
	/* Key creations take their turns with the bots' queues. */
	struct botid_fairq		 create_q;
	struct botid_backend_ref	*next;	/* list of all open backends */
};

struct botid_key_ref {
	int				 refs;
	char				*bot_name;
	char				 key_name[BOTID_MAX_KEY_NAME + 1];
	uint32_t			 gen;	/* rotations so far */
	enum botid_key_type		 key_type;
	struct botid_backend_ref	*backend;
	struct botid_key		*key;
	uint8_t				*spki;
	size_t				 spki_len;
	/*
	 * The token key (bots with scopes): only handle_jwt signs with it,
	 * through registry_token_key(); no other accessor hands it out.
	 */
	struct botid_key		*tok_key;
	uint8_t				*tok_spki;
	size_t				 tok_spki_len;
	/*
	 * Opened without a device command (key_open_unproven): served at
	 * once, proven by a job on the pool (proving: queued or running);
	 * refused: the device said no, never reused.
	 */
	int				 unproven;
	int				 proving;
	int				 refused;
};

/*
 * The proof of a key opened unproven, run on its backend's pool like a
 * creation: the loop drops the key from service if the device refuses it.
 */
struct botid_proof {
	struct botid_job		 job;	/* first: cast back */
	struct botid_key_ref		*key;	/* reference */
};

/*
 * A bot's first key (or one a reload found missing) made on its backend's
 * pool, not in the event loop: the worker fills the key fields, the loop
 * hands them to the bot that waits (registry_creation_done).
 */
struct botid_creation {
	struct botid_job		 job;	/* first: cast back */
	struct botid_creation		*next;	/* in flight or held */
	struct botid_agent_config	*cfg;	/* reference, holds bot */
	const struct botid_bot_config	*bot;
	struct botid_bot_config		 kc;	/* bot, named for its key */
	char				 key_name[BOTID_MAX_KEY_NAME + 1];
	uint32_t			 gen;
	struct botid_backend_ref	*backend; /* reference */
	int				 queued;	/* in its pool now */
	/* Filled by the worker. */
	struct botid_key		*key;
	uint8_t				*spki;
	size_t				 spki_len;
	struct botid_key		*tok_key;
	uint8_t				*tok_spki;
	size_t				 tok_spki_len;
};

/* Every backend open in the process; touched only by the loop thread. */
static struct botid_backend_ref *open_backends;
/* Creations not yet handed over; touched only by the loop thread. */
static struct botid_creation *creations;
/*
 * Set once the agent stops: a creation not begun by then is not begun
 * (200 keys at 300 ms each would hold the stop for a minute).
 */
static atomic_int creations_cancelled;

static char *
backend_ident(const struct botid_agent_config *cfg,
    const struct botid_bot_config *bot)
{
	char *s = NULL;

	if (bot->backend == BOTID_BACKEND_TPM) {
		if (asprintf(&s, "tpm\n%s\n%s", cfg->tcti ? cfg->tcti : "",
		    cfg->state_dir) == -1)
			return NULL;
	} else {
		if (asprintf(&s, "pkcs11\n%s\n%s\n%s\n%s", bot->module,
		    bot->token_label, bot->pin_file ? bot->pin_file : "",
		    bot->pin_credential ? bot->pin_credential : "") == -1)
			return NULL;
	}
	return s;
}

/* Whether b is the backend bot would use. */
static int
backend_is(const struct botid_backend_ref *b,
    const struct botid_agent_config *cfg, const struct botid_bot_config *bot)
{
	char *ident;
	int same;

	if ((ident = backend_ident(cfg, bot)) == NULL)
		return 0;
	same = strcmp(b->ident, ident) == 0;
	free(ident);
	return same;
}

static void
backend_unref(struct botid_backend_ref *b)
{
	struct botid_backend_ref **pp;

	if (b == NULL || --b->refs > 0)
		return;
	for (pp = &open_backends; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pool_destroy(b->pool);
	b->be->ops->close(b->be);
	free(b->ident);
	free(b);
}

/* Resolves a systemd credential or a PIN file path for the backend. */
static int
pin_path(const struct botid_bot_config *bot, char *path, size_t len)
{
	const char *dir;

	if (bot->pin_file != NULL) {
		if ((size_t)snprintf(path, len, "%s", bot->pin_file) >= len)
			return BOTID_ERR_TOO_LARGE;
		return 0;
	}
	if ((dir = getenv("CREDENTIALS_DIRECTORY")) == NULL) {
		log_err("bot %s: pin_credential %s set but CREDENTIALS_DIRECTORY "
		    "is not (start the agent from systemd with LoadCredential=)",
		    bot->name, bot->pin_credential);
		return BOTID_ERR_CONFIG;
	}
	if ((size_t)snprintf(path, len, "%s/%s", dir, bot->pin_credential) >=
	    len)
		return BOTID_ERR_TOO_LARGE;
	return 0;
}

static int
backend_get(const struct botid_agent_config *cfg,
    const struct botid_bot_config *bot, struct botid_done *done,
    struct botid_backend_ref **bp)
{
	struct botid_backend_ref *b = NULL;
	struct botid_backend *be = NULL;
	char pin[BOTID_MAX_PATH];
	unsigned threads;
	char *ident;
	int r;

	*bp = NULL;
	if ((ident = backend_ident(cfg, bot)) == NULL)
		return BOTID_ERR_ALLOC;
	for (b = open_backends; b != NULL; b = b->next) {
		if (strcmp(b->ident, ident) == 0) {
			free(ident);
			b->refs++;
			*bp = b;
			return 0;
		}
	}
	if (bot->backend == BOTID_BACKEND_TPM) {
		threads = 1;
		r = backend_tpm_open(cfg->tcti, cfg->state_dir,
		    cfg->tpm_loaded_keys, &be);
	} else {
		threads = cfg->pkcs11_sessions;
		if ((r = pin_path(bot, pin, sizeof(pin))) == 0)
			r = backend_pkcs11_open(bot->module, bot->token_label,
			    pin, cfg->pkcs11_sessions, &be);
	}
	if (r != 0) {
		free(ident);
		return r;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto fail;
	}
	if ((r = pool_create(be, threads, done, &b->pool)) != 0)
		goto fail;
	/* A token answers in microseconds; a TPM may take a second. */
	if (bot->backend == BOTID_BACKEND_PKCS11)
		pool_allow_inline(b->pool);
	b->refs = 1;
	b->ident = ident;
	b->be = be;
	b->next = open_backends;
	open_backends = b;
	*bp = b;
	return 0;
 fail:
	free(b);
	be->ops->close(be);
	free(ident);
	return r;
}

static void
key_unref(struct botid_key_ref *k)
{
	if (k == NULL || --k->refs > 0)
		return;
	k->backend->be->ops->key_close(k->backend->be, k->key);
	k->backend->be->ops->key_close(k->backend->be, k->tok_key);
	backend_unref(k->backend);
	free(k->spki);
	free(k->tok_spki);
	free(k->bot_name);
	free(k);
}

/* A key of prev that this bot may keep using, or NULL. */
static struct botid_key_ref *
key_reusable(const struct botid_registry *prev, const struct botid_bot_config *bot,
    const char *key_name, const char *ident)
{
	size_t i;

	if (prev == NULL)
		return NULL;
	for (i = 0; i < prev->nbots; i++) {
		struct botid_key_ref *k = prev->bots[i].key;

		if (k != NULL && !k->refused &&
		    strcmp(k->bot_name, bot->name) == 0 &&
		    strcmp(k->key_name, key_name) == 0 &&
		    k->key_type == bot->key_type &&
		    (k->tok_key != NULL) == (bot->nscopes > 0) &&
		    strcmp(k->backend->ident, ident) == 0)
			return k;
	}
	return NULL;
}

/*
 * The bot's rotation state, made at generation 0 the first time the bot
 * is seen. At start (no prev), a key a crashed rotation was making is
 * destroyed: it was never certified nor served.
 */
static int
key_state_update(const struct botid_agent_config *cfg,
    const struct botid_bot_config *bot, struct botid_backend_ref *b,
    int starting, struct rotation_state *st)
{
	struct botid_bot_config kc;
	struct rotation_state fresh;
	char name[BOTID_MAX_KEY_NAME + 1];
	int r;

	r = rotation_load(cfg->state_dir, bot->name, st);
	if (r == BOTID_ERR_NOT_FOUND) {
		if ((r = rotation_init(bot, st)) != 0)
			return r;
		st->created = time(NULL);
		return rotation_save(cfg->state_dir, st);
	}
	if (r != 0)
		return r;
	if (st->removed) {
		/* Back after a removal: a new key, the old ones stay dead. */
		log_info("bot %s: back in the configuration after its removal; "
		    "it gets a new key", bot->name);
		if (st->gen == UINT32_MAX)
			return BOTID_ERR_TOO_LARGE;
		/*
		 * Configured again, it may hold ROTATION_MAX_RETIRED entries,
		 * not the one more a removal adds: it waits until the renewer
		 * has revoked enough of the old certificates.
		 */
		if (st->nretired > ROTATION_MAX_RETIRED) {
			log_err("bot %s: not back yet: %zu certificates of its "
			    "old keys still wait for revocation (at most %u may "
			    "while it is configured)", bot->name, st->nretired,
			    ROTATION_MAX_RETIRED);
			return BOTID_ERR_BUSY;
		}
		if ((r = rotation_init(bot, &fresh)) != 0)
			return r;
		/* Its old certificates may still wait for revocation. */
		memcpy(fresh.retired, st->retired, sizeof(fresh.retired));
		fresh.nretired = st->nretired;
		fresh.gen = st->gen + 1;
		fresh.created = time(NULL);
		rotation_free(st);
		*st = fresh;
		return rotation_save(cfg->state_dir, st);
	}
	if (st->backend != bot->backend || st->key_type != bot->key_type) {
		log_err("bot %s: its keys are %s %s keys (%s/keys/%s.json) but "
		    "the configuration says %s %s: remove the bot, reload, "
		    "then add it back to make new ones", bot->name,
		    config_backend_name(st->backend),
		    config_key_type_name(st->key_type), cfg->state_dir,
		    bot->name, config_backend_name(bot->backend),
		    config_key_type_name(bot->key_type));
		return BOTID_ERR_CONFIG;
	}
	if (starting && st->pending != 0) {
		rotation_key_config(st, st->pending, name, &kc);
		r = rotation_key_remove(b->be, &kc);
		if (r != 0 && r != BOTID_ERR_NOT_FOUND)
			return r;
		log_warn("bot %s: a rotation was interrupted before its new "
		    "key %s was in use; %s", bot->name, name, r == 0 ?
		    "destroyed it" : "it was never made");
		st->pending = 0;
		if ((r = rotation_save(cfg->state_dir, st)) != 0)
			return r;
	}
	return 0;
}

/*
 * The token key beside k's signing key, same backend and type, for a bot
 * with scopes; a bot without scopes has none, and one left from an
 * earlier configuration is destroyed.
 */
static int
token_key_get(struct botid_backend_ref *b, const struct botid_bot_config *bot,
    int lazy, struct botid_key_ref *k)
{
	const struct botid_backend_ops *ops = b->be->ops;
	struct botid_bot_config kc;
	char name[BOTID_MAX_KEY_NAME + 1];
	int r;

	if ((size_t)snprintf(name, sizeof(name), "%s%s", k->key_name,
	    BOTID_TOKEN_KEY_SUFFIX) >= sizeof(name))
		return BOTID_ERR_TOO_LARGE;
	kc = *bot;
	kc.name = name;
	if (bot->nscopes == 0) {
		r = b->be->ops->key_remove(b->be, &kc);
		if (r == 0)
			log_info("bot %s: no scopes any more: its token key is "
			    "destroyed", bot->name);
		return r == 0 || r == BOTID_ERR_NOT_FOUND ? 0 : r;
	}
	/* One that exists is proven with the signing key, off the loop. */
	if (lazy && ops->key_open_unproven != NULL &&
	    ops->key_exists != NULL && ops->key_exists(b->be, &kc) == 1) {
		k->unproven = 1;
		return ops->key_open_unproven(b->be, &kc, &k->tok_key,
		    &k->tok_spki, &k->tok_spki_len);
	}
	return ops->key_open(b->be, &kc, &k->tok_key, &k->tok_spki,
	    &k->tok_spki_len);
}

/*
 * key_state_update() under the lock of the bot's state file when it will
 * rewrite the file, so that a rotation or retirement of the same bot running
 * in the renewer loses no update and has none of its own lost. The lock
 * is not waited for (this is the event loop): the bot then waits for the
 * next reload. Reading alone needs no lock: the file is replaced whole.
 */
static int
key_state(const struct botid_agent_config *cfg,
    const struct botid_bot_config *bot, struct botid_backend_ref *b,
    int starting, struct rotation_state *st)
{
	int lock = -1, writes, r;

	r = rotation_load(cfg->state_dir, bot->name, st);
	if (r != 0 && r != BOTID_ERR_NOT_FOUND)
		return r;
	/*
	 * A bot with no state yet has nobody else writing it (rotations and
	 * retirements need a state), and its first write must leave nothing
	 * else on a full disk: no lock file for it.
	 */
	writes = r == 0 && (st->removed || (starting && st->pending != 0));
	rotation_free(st);
	if (writes &&
	    (r = rotation_lock(cfg->state_dir, bot->name, 0, &lock)) != 0) {
		if (r == BOTID_ERR_BUSY)
			log_err("bot %s: its key state is being changed (a "
			    "rotation or revocation is under way): not served "
			    "until the next reload", bot->name);
		return r;
	}
	r = key_state_update(cfg, bot, b, starting, st);
	rotation_unlock(lock);
	return r;
}

static struct botid_creation *creation_find(const char *, const char *,
		    const struct botid_backend_ref *, enum botid_key_type);
static int	creation_new(struct botid_agent_config *,
		    const struct botid_bot_config *, const char *, uint32_t,
		    struct botid_backend_ref *, struct botid_creation **);

/*
 * The bot's key: reused from prev, opened, or (*crp set, *kp NULL) being
 * created in the background because it does not exist yet.
 */
static int
key_get(struct botid_agent_config *cfg, const struct botid_bot_config *bot,
    const struct botid_registry *prev, struct botid_done *done,
    struct botid_key_ref **kp, struct botid_creation **crp)
{
	struct botid_key_ref *k = NULL;
	struct botid_backend_ref *b = NULL;
	struct botid_bot_config kc;
	struct rotation_state st;
	char name[BOTID_MAX_KEY_NAME + 1];
	char *ident;
	int r;

	*kp = NULL;
	*crp = NULL;
	memset(&st, 0, sizeof(st));
	if ((r = backend_get(cfg, bot, done, &b)) != 0)
		return r;
	if ((r = key_state(cfg, bot, b, prev == NULL, &st)) != 0)
		goto out;
	rotation_key_name(bot->name, st.gen, name);
	if ((ident = backend_ident(cfg, bot)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	k = key_reusable(prev, bot, name, ident);
	free(ident);
	if (k != NULL) {
		k->refs++;
		*kp = k;
		k = NULL;
		r = 0;
		goto out;
	}
	/* Missing: made on the pool, the loop serves the others meanwhile. */
	kc = *bot;
	kc.name = name;
	if (b->be->ops->key_exists != NULL &&
	    (r = b->be->ops->key_exists(b->be, &kc)) != 1) {
		if (r < 0)
			goto out;
		if ((*crp = creation_find(bot->name, name, b,
		    bot->key_type)) == NULL) {
			if ((r = creation_new(cfg, bot, name, st.gen, b,
			    crp)) != 0)
				goto out;
			b = NULL;	/* the creation's reference now */
		}
		r = 0;
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->bot_name = strdup(bot->name)) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	snprintf(k->key_name, sizeof(k->key_name), "%s", name);
	k->gen = st.gen;
	k->key_type = bot->key_type;
	kc = *bot;
	kc.name = k->key_name;
	/*
	 * No device command in the loop where the backend can do without:
	 * on a slow TPM a load each would hold every bot back (the proof is
	 * queued on the pool by registry_build).
	 */
	if (b->be->ops->key_open_unproven != NULL) {
		k->unproven = 1;
		r = b->be->ops->key_open_unproven(b->be, &kc, &k->key,
		    &k->spki, &k->spki_len);
	} else
		r = b->be->ops->key_open(b->be, &kc, &k->key, &k->spki,
		    &k->spki_len);
	if (r != 0 || (r = token_key_get(b, bot, 1, k)) != 0)
		goto out;
	k->backend = b;
	b = NULL;
	k->refs = 1;
	*kp = k;
	k = NULL;
	r = 0;
 out:
	if (k != NULL) {
		if (b != NULL)
			b->be->ops->key_close(b->be, k->key);
		free(k->spki);
		free(k->bot_name);
		free(k);
	}
	backend_unref(b);
	rotation_free(&st);
	return r;
}

/*
 * When the host is provisioned, the TPM backend (shared with TPM bots: one
 * TPM, one connection) with the attestation key and host key handed over.
 */
static int
attest_get(const struct botid_agent_config *cfg, struct botid_done *done,
    struct botid_backend_ref **bp)
{
	struct botid_bot_config tpm_bot;
	struct botid_backend_ref *b = NULL;
	struct host_state hs;
	char err[1024];
	int r;

	*bp = NULL;
	if ((r = host_state_load(cfg->state_dir, &hs, err, sizeof(err))) != 0) {
		log_err("%s", err);
		goto out;
	}
	if (!hs.enrolled) {
		log_info("host not provisioned: bots get no certificates "
		    "(run botid provision, then restart the agent)");
		r = 0;
		goto out;
	}
	memset(&tpm_bot, 0, sizeof(tpm_bot));
	tpm_bot.backend = BOTID_BACKEND_TPM;
	if ((r = backend_get(cfg, &tpm_bot, done, &b)) != 0) {
		log_err("attestation: the TPM is unavailable: %s",
		    botid_strerror(r));
		goto out;
	}
	if (!b->attest_keys) {
		if ((r = backend_tpm_attest_keys(b->be, &hs)) != 0) {
			backend_unref(b);
			goto out;
		}
		b->attest_keys = 1;
	}
	*bp = b;
	r = 0;
 out:
	host_state_free(&hs);
	return r;
}

struct botid_backend *
registry_attest_backend(const struct botid_registry *reg)
{
	return reg->attest != NULL ? reg->attest->be : NULL;
}

/* A reload keeps a bot's counters: they run since the agent started. */
static void
counters_carry(const struct botid_registry *prev, struct botid_bot *bot)
{
	size_t i;

	for (i = 0; prev != NULL && i < prev->nbots; i++) {
		if (strcmp(prev->bots[i].cfg->name, bot->cfg->name) != 0)
			continue;
		bot->ops = prev->bots[i].ops;
		bot->denials = prev->bots[i].denials;
		bot->last_used = prev->bots[i].last_used;
		return;
	}
}

int
registry_rebuild(const struct botid_registry *prev, struct botid_done *done,
    struct botid_registry **regp)
{
	return registry_build(config_ref(prev->cfg), prev, done, regp);
}

uint32_t
registry_key_gen(const struct botid_bot *bot)
{
	return bot->key->gen;
}

struct botid_backend *
registry_backend(const struct botid_bot *bot)
{
	return bot->key->backend->be;
}

/*
 * One bot with key state that the configuration no longer names: its
 * keys destroyed now, its state kept while certificates wait for
 * revocation (then *gone is set), else removed.
 */
static int
forget_bot(const struct botid_agent_config *cfg, const char *name,
    struct botid_done *done, int *gone)
{
	struct rotation_state st;
	struct botid_backend_ref *b = NULL;
	struct botid_bot_config kc;
	char key[BOTID_MAX_KEY_NAME + 1], serial[80];
	size_t i;
	int r, waits = 0, lock = -1;

	*gone = 0;
	memset(&st, 0, sizeof(st));
	/*
	 * A rotation or retirement of this bot holds the lock while it
	 * reads, changes and writes the state: destroying the keys meanwhile
	 * would be undone by its write. Not waited for (this is the event
	 * loop): the next registry build (the rotation's end, a reload)
	 * comes back to it.
	 */
	if ((r = rotation_lock(cfg->state_dir, name, 0, &lock)) != 0) {
		if (r == BOTID_ERR_BUSY)
			log_info("bot %s: gone from the configuration; a "
			    "rotation or revocation of its keys is under way: "
			    "its keys go once it ends", name);
		return r == BOTID_ERR_ALLOC ? r : 0;
	}
	if ((r = rotation_load(cfg->state_dir, name, &st)) != 0) {
		rotation_unlock(lock);
		return r == BOTID_ERR_ALLOC ? r : 0;	/* logged */
	}
	if (!st.removed) {
		rotation_key_config(&st, st.gen, key, &kc);
		if ((r = backend_get(cfg, &kc, done, &b)) != 0) {
			log_err("bot %s: gone from the configuration, but its "
			    "keys cannot be destroyed now (%s): will try again "
			    "at the next reload or start", name,
			    botid_strerror(r));
			goto out;
		}
		(void)rotation_cached_serial(cfg->state_dir, name, serial,
		    sizeof(serial));
		if ((r = rotation_destroy_all(&st, b->be, serial)) != 0) {
			log_err("bot %s: gone from the configuration, but its "
			    "keys cannot be destroyed now (%s): will try again "
			    "at the next reload or start", name,
			    botid_strerror(r));
			goto out;
		}
		if ((r = rotation_save(cfg->state_dir, &st)) != 0)
			goto out;
		rotation_uncache(cfg->state_dir, name);
		log_info("bot %s: gone from the configuration: every key it had "
		    "is destroyed", name);
	}
	for (i = 0; i < st.nretired; i++)
		if (st.retired[i].serial[0] != '\0')
			waits = 1;
	if (waits)
		*gone = 1;
	else
		r = rotation_remove(cfg->state_dir, name);
 out:
	backend_unref(b);
	rotation_free(&st);
	rotation_unlock(lock);
	return r == BOTID_ERR_ALLOC ? r : 0;
}

/* Whether a key of bot is being made (destroying its keys would race). */
static int
creation_pending(const char *bot)
{
	struct botid_creation *cr;

	for (cr = creations; cr != NULL; cr = cr->next)
		if (strcmp(cr->bot->name, bot) == 0)
			return 1;
	return 0;
}

/* Bots with key state that cfg does not name. */
static int
forget_gone(const struct botid_agent_config *cfg, struct botid_registry *reg,
    struct botid_done *done)
{
	char **names = NULL;
	size_t i, n = 0;
	int r, gone;

	if ((r = rotation_list(cfg->state_dir, &names, &n)) != 0)
		return r == BOTID_ERR_ALLOC ? r : 0;
	if (n > 0 && (reg->gone = calloc(n, sizeof(*reg->gone))) == NULL) {
		r = BOTID_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (config_find_bot(cfg, names[i]) != NULL)
			continue;
		if (creation_pending(names[i])) {
			log_info("bot %s: gone from the configuration while "
			    "its key is being made: its keys go at the next "
			    "reload", names[i]);
			continue;
		}
		if ((r = forget_bot(cfg, names[i], done, &gone)) != 0)
			goto out;
		if (gone) {
			reg->gone[reg->ngone++] = names[i];
			names[i] = NULL;
		}
	}
	r = 0;
 out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int
registry_destroy_all(struct botid_registry *reg, struct botid_done *done)
{
	const struct botid_agent_config *cfg = reg->cfg;
	struct rotation_state st;
	struct botid_backend_ref *b;
	struct botid_bot_config kc;
	char key[BOTID_MAX_KEY_NAME + 1], **names = NULL;
	size_t i, j, n = 0;
	int r, first = 0;

	if ((r = rotation_list(cfg->state_dir, &names, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (rotation_load(cfg->state_dir, names[i], &st) != 0) {
			first = first != 0 ? first : BOTID_ERR_INVALID;
			continue;
		}
		rotation_key_config(&st, st.gen, key, &kc);
		b = NULL;
		if (!st.removed && (r = backend_get(cfg, &kc, done, &b)) == 0)
			r = rotation_destroy_all(&st, b->be, "");
		backend_unref(b);
		if (r == 0 || st.removed)
			r = rotation_remove(cfg->state_dir, names[i]);
		else
			log_err("bot %s: cannot destroy its keys: %s", names[i],
			    botid_strerror(r));
		rotation_uncache(cfg->state_dir, names[i]);
		rotation_free(&st);
		if (r != 0 && first == 0)
			first = r;
	}
	/* Configured bots without state: a first key, from an older agent. */
	for (j = 0; j < cfg->nbots; j++) {
		const struct botid_bot_config *bc = &cfg->bots[j];

		for (i = 0; i < n; i++)
			if (strcmp(names[i], bc->name) == 0)
				break;
		if (i < n)
			continue;
		b = NULL;
		if ((r = backend_get(cfg, bc, done, &b)) == 0 &&
		    (r = rotation_key_remove(b->be, bc)) == BOTID_ERR_NOT_FOUND)
			r = 0;
		backend_unref(b);
		rotation_uncache(cfg->state_dir, bc->name);
		if (r != 0) {
			log_err("bot %s: cannot destroy its key: %s", bc->name,
			    botid_strerror(r));
			if (first == 0)
				first = r;
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return first;
}

/* The creation in flight (or held back) for this very key, or NULL. */
static struct botid_creation *
creation_find(const char *bot, const char *key_name,
    const struct botid_backend_ref *b, enum botid_key_type type)
{
	struct botid_creation *cr;

	for (cr = creations; cr != NULL; cr = cr->next)
		if (strcmp(cr->bot->name, bot) == 0 &&
		    strcmp(cr->key_name, key_name) == 0 &&
		    cr->backend == b && cr->kc.key_type == type)
			return cr;
	return NULL;
}

/*
 * Runs on the backend's worker: makes the key (and the token key of a bot
 * with scopes) as key_get() would have in the loop.
 */
static int
creation_run(void *arg)
{
	struct botid_creation *cr = arg;
	struct botid_backend *be = cr->backend->be;
	struct botid_key_ref tmp;
	const char *gate = getenv("BOTID_TEST_CREATE_GATE");
	int r;

	if (atomic_load(&creations_cancelled))
		return BOTID_ERR_INCOMPLETE;
	/* Test hook: a test holds creations back to see who serves first. */
	if (gate != NULL && access(gate, F_OK) != 0)
		return BOTID_ERR_INCOMPLETE;
	if ((r = be->ops->key_open(be, &cr->kc, &cr->key, &cr->spki,
	    &cr->spki_len)) != 0)
		return r;
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.key_name, sizeof(tmp.key_name), "%s", cr->key_name);
	if ((r = token_key_get(cr->backend, cr->bot, 0, &tmp)) != 0)
		return r;
	cr->tok_key = tmp.tok_key;
	cr->tok_spki = tmp.tok_spki;
	cr->tok_spki_len = tmp.tok_spki_len;
	return 0;
}

static int
creation_new(struct botid_agent_config *cfg, const struct botid_bot_config *bot,
    const char *key_name, uint32_t gen, struct botid_backend_ref *b,
    struct botid_creation **crp)
{
	struct botid_creation *cr, **pp;

	*crp = NULL;
	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return BOTID_ERR_ALLOC;
	cr->cfg = config_ref(cfg);
	cr->bot = bot;
	snprintf(cr->key_name, sizeof(cr->key_name), "%s", key_name);
	cr->kc = *bot;
	cr->kc.name = cr->key_name;
	cr->gen = gen;
	cr->backend = b;
	cr->job.kind = BOTID_JOB_CALL;
	cr->job.call = creation_run;
	cr->job.owner = cr;
	cr->job.fairq = &b->create_q;
	/* Last: keys are made in the configuration's order. */
	for (pp = &creations; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = cr;
	*crp = cr;
	return 0;
}

/* Queues every creation not in a pool yet (the build is over). */
static size_t
creations_submit(void)
{
	struct botid_creation *cr;
	size_t n = 0;

	for (cr = creations; cr != NULL; cr = cr->next) {
		if (!cr->queued) {
			cr->queued = 1;
			pool_submit(cr->backend->pool, &cr->job);
		}
		n++;
	}
	return n;
}

static void
creation_free(struct botid_creation *cr)
{
	struct botid_creation **pp;
	struct botid_backend *be = cr->backend->be;

	for (pp = &creations; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == cr) {
			*pp = cr->next;
			break;
		}
	}
	be->ops->key_close(be, cr->key);
	be->ops->key_close(be, cr->tok_key);
	free(cr->spki);
	free(cr->tok_spki);
	backend_unref(cr->backend);
	config_free(cr->cfg);
	free(cr);
}

/* The creation is over, whatever its outcome: freed, maybe the last one. */
static void
creation_over(struct botid_registry *reg, struct botid_creation *cr)
{
	size_t i, served = 0;

	creation_free(cr);
	if (creations != NULL)
		return;
	for (i = 0; i < reg->nbots; i++)
		served += reg->bots[i].key != NULL;
	log_info("key creations over: serving %zu of %zu configured bots",
	    served, reg->nbots);
}

/* Runs on the backend's worker: the device vouches for the key, or not. */
static int
proof_run(void *arg)
{
	struct botid_proof *pf = arg;
	struct botid_backend *be = pf->key->backend->be;
	int r;

	/* The agent stops: a proof not begun is not needed. */
	if (atomic_load(&creations_cancelled))
		return BOTID_ERR_INCOMPLETE;
	if ((r = be->ops->key_prove(be, pf->key->key)) != 0)
		return r;
	if (pf->key->tok_key != NULL)
		return be->ops->key_prove(be, pf->key->tok_key);
	return 0;
}

/*
 * Queues the proof of every key of reg opened unproven and not being
 * proven yet, on its backend's pool, in the queue of key creations (one
 * more turn in the round-robin, so a bot asking waits for one at most).
 */
static int
proofs_submit(struct botid_registry *reg)
{
	struct botid_proof *pf;
	struct botid_key_ref *k;
	size_t i;

	for (i = 0; i < reg->nbots; i++) {
		if ((k = reg->bots[i].key) == NULL || !k->unproven ||
		    k->proving)
			continue;
		if ((pf = calloc(1, sizeof(*pf))) == NULL)
			return BOTID_ERR_ALLOC;
		pf->key = k;
		k->refs++;
		k->proving = 1;
		pf->job.kind = BOTID_JOB_CALL;
		pf->job.call = proof_run;
		pf->job.owner = pf;
		pf->job.fairq = &k->backend->create_q;
		pool_submit(k->backend->pool, &pf->job);
	}
	return 0;
}

/* A proof is back: a refused key leaves reg's bots, as a failed open. */
static void
proof_done(struct botid_registry *reg, struct botid_proof *pf)
{
	struct botid_key_ref *k = pf->key;
	struct botid_bot *bot;
	size_t i;
	int r = pf->job.result;

	k->proving = 0;
	if (r == 0)
		k->unproven = 0;
	else if (r != BOTID_ERR_INCOMPLETE) {
		k->refused = 1;
		for (i = 0; i < reg->nbots; i++) {
			bot = &reg->bots[i];
			if (bot->key != k)
				continue;
			log_err("bot %s: not served: %s", bot->cfg->name,
			    botid_strerror(r));
			bot->unavailable = r == BOTID_ERR_UNAVAILABLE;
			key_unref(bot->refused);
			/* Jobs in flight may hold it: kept until reg goes. */
			bot->refused = k;
			bot->key = NULL;
		}
	}
	key_unref(k);
	free(pf);
}

int
registry_creation_done(struct botid_registry *reg, struct botid_job *job)
{
	struct botid_creation *cr = job->owner;
	struct botid_bot *bot = NULL;
	struct botid_key_ref *k;
	size_t i;
	int r = job->result;

	if (job->call == proof_run) {
		proof_done(reg, job->owner);
		return 0;
	}
	cr->queued = 0;
	/* Held back (test gate: retried) or the agent stops (dropped). */
	if (r == BOTID_ERR_INCOMPLETE)
		return 0;
	for (i = 0; i < reg->nbots; i++)
		if (reg->bots[i].creation == cr)
			bot = &reg->bots[i];
	if (bot != NULL)
		bot->creation = NULL;
	if (r != 0) {
		log_err("bot %s: not served: its key could not be created: %s",
		    cr->bot->name, botid_strerror(r));
		if (bot != NULL)
			bot->unavailable = r == BOTID_ERR_UNAVAILABLE;
		creation_over(reg, cr);
		return 0;
	}
	if (bot == NULL) {
		/* Reconfigured meanwhile: the key stays for the next build. */
		log_info("bot %s: key %s created, for a configuration no "
		    "longer in force", cr->bot->name, cr->key_name);
		creation_over(reg, cr);
		return 0;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->bot_name = strdup(cr->bot->name)) == NULL) {
		free(k);
		log_err("bot %s: not served: out of memory", cr->bot->name);
		creation_over(reg, cr);
		return 0;
	}
	snprintf(k->key_name, sizeof(k->key_name), "%s", cr->key_name);
	k->gen = cr->gen;
	k->key_type = cr->kc.key_type;
	k->backend = cr->backend;
	k->backend->refs++;
	k->key = cr->key;
	k->spki = cr->spki;
	k->spki_len = cr->spki_len;
	k->tok_key = cr->tok_key;
	k->tok_spki = cr->tok_spki;
	k->tok_spki_len = cr->tok_spki_len;
	k->refs = 1;
	cr->key = cr->tok_key = NULL;
	cr->spki = cr->tok_spki = NULL;
	bot->key = k;
	bot->unavailable = 0;
	log_info("bot %s: its new key is made: served", bot->cfg->name);
	creation_over(reg, cr);
	return 1;
}

void
registry_creations_retry(void)
{
	if (!atomic_load(&creations_cancelled))
		(void)creations_submit();
}

void
registry_creations_cancel(void)
{
	atomic_store(&creations_cancelled, 1);
}

size_t
registry_creations_in_pool(void)
{
	struct botid_creation *cr;
	size_t n = 0;

	for (cr = creations; cr != NULL; cr = cr->next)
		n += cr->queued != 0;
	return n;
}

void
registry_creations_drop(void)
{
	struct botid_creation *cr, *next;

	for (cr = creations; cr != NULL; cr = next) {
		next = cr->next;
		if (!cr->queued)
			creation_free(cr);
	}
}

int
registry_build(struct botid_agent_config *cfg, const struct botid_registry *prev,
    struct botid_done *done, struct botid_registry **regp)
{
	struct botid_registry *reg;
	size_t i, served = 0, creating = 0;
	int r;

	*regp = NULL;
	if ((reg = calloc(1, sizeof(*reg))) == NULL)
		return BOTID_ERR_ALLOC;
	if (cfg->nbots > 0 &&
	    (reg->bots = calloc(cfg->nbots, sizeof(*reg->bots))) == NULL) {
		free(reg);
		return BOTID_ERR_ALLOC;
	}
	reg->refs = 1;
	reg->cfg = cfg;
	reg->nbots = cfg->nbots;
	for (i = 0; i < cfg->nbots; i++) {
		const struct botid_bot_config *bc = &cfg->bots[i];

		reg->bots[i].cfg = bc;
		counters_carry(prev, &reg->bots[i]);
		if ((r = key_get(cfg, bc, prev, done, &reg->bots[i].key,
		    &reg->bots[i].creation)) != 0) {
			log_err("bot %s: not served: %s", bc->name,
			    botid_strerror(r));
			reg->bots[i].unavailable = r == BOTID_ERR_UNAVAILABLE;
			if (r == BOTID_ERR_ALLOC) {
				registry_unref(reg);
				return r;
			}
			continue;
		}
		if (reg->bots[i].creation != NULL)
			creating++;
		else
			served++;
	}
	if ((r = attest_get(cfg, done, &reg->attest)) == BOTID_ERR_ALLOC ||
	    (r = forget_gone(cfg, reg, done)) == BOTID_ERR_ALLOC) {
		registry_unref(reg);
		return r;
	}
	/* Existing keys are open: proofs, then creations, take the device. */
	if (proofs_submit(reg) != 0) {
		registry_unref(reg);
		return BOTID_ERR_ALLOC;
	}
	(void)creations_submit();
	if (creating > 0)
		log_info("serving %zu of %zu configured bots; %zu keys being "
		    "created in the background", served, cfg->nbots, creating);
	else
		log_info("serving %zu of %zu configured bots", served,
		    cfg->nbots);
	*regp = reg;
	return 0;
}

struct botid_bot *
registry_find(struct botid_registry *reg, const char *name)
{
	size_t i;

	for (i = 0; i < reg->nbots; i++)
		if (reg->bots[i].key != NULL &&
		    strcmp(reg->bots[i].cfg->name, name) == 0)
			return &reg->bots[i];
	return NULL;
}

struct botid_bot *
registry_find_unavailable(struct botid_registry *reg, const char *name)
{
	size_t i;

	for (i = 0; i < reg->nbots; i++)
		if (reg->bots[i].key == NULL && (reg->bots[i].unavailable ||
		    reg->bots[i].creation != NULL) &&
		    strcmp(reg->bots[i].cfg->name, name) == 0)
			return &reg->bots[i];
	return NULL;
}

size_t
registry_unavailable_count(const struct botid_registry *reg)
{
	size_t i, n = 0;

	for (i = 0; i < reg->nbots; i++)
		if (reg->bots[i].key == NULL && reg->bots[i].unavailable)
			n++;
	return n;
}

int
registry_retry(const struct botid_registry *prev, struct botid_done *done,
    struct botid_registry **regp)
{
	struct botid_backend_ref **held = NULL, *b;
	size_t i, nheld = 0, opened = 0;
	int r, was_open;

	*regp = NULL;
	if ((held = calloc(prev->nbots + 1, sizeof(*held))) == NULL)
		return BOTID_ERR_ALLOC;
	/*
	 * Only a backend that opens is worth a build: the references held
	 * here keep each one open until the build has taken its own. The
	 * tries fail the same way each time: their lines are debug ones.
	 */
	log_demote(1);
	for (i = 0; i < prev->nbots; i++) {
		const struct botid_bot *bot = &prev->bots[i];

		if (bot->key != NULL || !bot->unavailable)
			continue;
		was_open = 0;
		for (b = open_backends; b != NULL; b = b->next)
			was_open += b->refs > 0 && backend_is(b, prev->cfg,
			    bot->cfg);
		if ((r = backend_get(prev->cfg, bot->cfg, done,
		    &held[nheld])) == BOTID_ERR_ALLOC)
			goto out;
		if (r == 0) {
			nheld++;
			opened += !was_open;
		}
	}
	if (nheld == 0) {
		r = BOTID_ERR_UNAVAILABLE;
		goto out;
	}
	/*
	 * A backend that opened is news, and so is what the build does
	 * with it (keys made, bots served). A backend open all along whose
	 * bot's key failed to open is tried again quietly.
	 */
	if (opened > 0)
		log_demote(0);
	r = registry_rebuild(prev, done, regp);
 out:
	log_demote(0);
	for (i = 0; i < nheld; i++)
		backend_unref(held[i]);
	free(held);
	return r;
}

int
registry_drop_backend(const struct botid_registry *prev,
    const struct botid_backend *be, struct botid_registry **regp)
{
	struct botid_registry *reg;
	size_t i;

	*regp = NULL;
	if ((reg = calloc(1, sizeof(*reg))) == NULL)
		return BOTID_ERR_ALLOC;
	reg->refs = 1;
	reg->cfg = config_ref(prev->cfg);
	if (prev->nbots > 0 &&
	    (reg->bots = calloc(prev->nbots, sizeof(*reg->bots))) == NULL)
		goto fail;
	reg->nbots = prev->nbots;
	if (prev->ngone > 0 &&
	    (reg->gone = calloc(prev->ngone, sizeof(*reg->gone))) == NULL)
		goto fail;
	for (; reg->ngone < prev->ngone; reg->ngone++)
		if ((reg->gone[reg->ngone] = strdup(prev->gone[reg->ngone])) ==
		    NULL)
			goto fail;
	for (i = 0; i < prev->nbots; i++) {
		struct botid_bot *bot = &reg->bots[i];
		const struct botid_bot *was = &prev->bots[i];

		/* Same configuration object: its bots are where they were. */
		bot->cfg = was->cfg;
		bot->ops = was->ops;
		bot->denials = was->denials;
		bot->last_used = was->last_used;
		bot->unavailable = was->unavailable;
		if (was->key == NULL)
			continue;
		if (was->key->backend->be == be) {
			bot->unavailable = 1;
			continue;
		}
		bot->key = was->key;
		bot->key->refs++;
	}
	if (prev->attest != NULL && prev->attest->be != be) {
		reg->attest = prev->attest;
		reg->attest->refs++;
	}
	*regp = reg;
	return 0;
 fail:
	registry_unref(reg);
	return BOTID_ERR_ALLOC;
}

const uint8_t *
registry_spki(const struct botid_bot *bot, size_t *len)
{
	*len = bot->key->spki_len;
	return bot->key->spki;
}

struct botid_key *
registry_key(const struct botid_bot *bot)
{
	return bot->key->key;
}

struct botid_key *
registry_token_key(const struct botid_bot *bot)
{
	return bot->key->tok_key;
}

const uint8_t *
registry_token_spki(const struct botid_bot *bot, size_t *len)
{
	*len = bot->key->tok_spki_len;
	return bot->key->tok_spki;
}

struct botid_pool *
registry_pool(const struct botid_bot *bot)
{
	return bot->key->backend->pool;
}

int
registry_key_is_ec(const struct botid_bot *bot)
{
	return bot->key->key_type == BOTID_KEY_ECDSA_P256 ||
	    bot->key->key_type == BOTID_KEY_ECDSA_P384;
}

void
registry_ref(struct botid_registry *reg)
{
	reg->refs++;
}

void
registry_unref(struct botid_registry *reg)
{
	size_t i;

	if (reg == NULL || --reg->refs > 0)
		return;
	for (i = 0; i < reg->nbots; i++) {
		key_unref(reg->bots[i].key);
		key_unref(reg->bots[i].refused);
	}
	backend_unref(reg->attest);
	for (i = 0; i < reg->ngone; i++)
		free(reg->gone[i]);
	free(reg->gone);
	free(reg->bots);
	config_free(reg->cfg);
	free(reg);
}

void
registry_expire(uint64_t now_ns, uint64_t *next_ns)
{
	struct botid_backend_ref *b;
	uint64_t next;

	*next_ns = 0;
	for (b = open_backends; b != NULL; b = b->next) {
		(void)pool_expire(b->pool, now_ns, &next);
		if (next != 0 && (*next_ns == 0 || next < *next_ns))
			*next_ns = next;
	}
}

size_t
registry_pending(void)
{
	struct botid_backend_ref *b;
	size_t n = 0;

	for (b = open_backends; b != NULL; b = b->next)
		n += pool_pending(b->pool);
	return n;
}
