/*
 * The set of bots the agent serves: for each configured bot its key handle,
 * public key and the pool that signs with it. A registry is immutable once
 * built; a reload builds a new one that reuses open backends and keys, and
 * requests in flight keep the old one alive through its reference count.
 * Used only from the event loop thread.
 */
#ifndef BOTID_AGENT_REGISTRY_H
#define BOTID_AGENT_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/backend.h"
#include "agent/config.h"
#include "agent/pool.h"

struct botid_backend_ref;
struct botid_key_ref;
struct botid_creation;	/* a key being created on its backend's pool */

struct botid_bot {
	const struct botid_bot_config	*cfg;	/* points into registry->cfg */
	struct botid_key_ref		*key;	/* NULL: key unusable, bot not served */
	/* key is NULL because its TPM or token was down: not a refusal. */
	int				 unavailable;
	/* key is NULL until this background creation is back. */
	struct botid_creation		*creation;
	/*
	 * The key its device refused once opened unproven (key is NULL
	 * then): kept until the registry goes, for jobs that may hold it.
	 */
	struct botid_key_ref		*refused;
	struct botid_fairq		 fairq;
	/*
	 * Since the agent started (a reload carries them over), for the
	 * inventory. Plain counters: only the loop thread touches them.
	 */
	uint64_t			 ops;
	uint64_t			 denials;
	time_t				 last_used;	/* 0: never */
};

struct botid_registry {
	int				 refs;
	struct botid_agent_config	*cfg;	/* owned */
	struct botid_bot		*bots;
	size_t				 nbots;
	struct botid_backend_ref	*attest; /* TPM with AK, host key */
	/*
	 * Bots gone from the configuration whose keys are destroyed but
	 * whose certificates still wait for revocation (the renewer's job).
	 */
	char				**gone;
	size_t				 ngone;
};

/*
 * Builds a registry for cfg (taking ownership of it), reusing backends and
 * keys of prev (may be NULL) and opening what is new. A bot whose key
 * cannot be opened is logged and left unserved; a backend that cannot be
 * opened leaves its bots unserved. A bot whose key does not exist yet is
 * not served until it does: its creation is queued on its backend's pool
 * (after every existing key is opened), and comes back through done as a
 * BOTID_JOB_CALL job for registry_creation_done(). Existing keys are
 * opened without a device command where the backend allows it
 * (key_open_unproven) and served at once; their proofs are queued on the
 * pool, before the creations, and come back the same way. Bots that have key
 * state but are no longer configured have every key destroyed here
 * (unless a creation of theirs is in flight), their certificates
 * listed in gone for revocation. Errors only for BOTID_ERR_ALLOC.
 */
int	registry_build(struct botid_agent_config *cfg,
	    const struct botid_registry *prev, struct botid_done *done,
	    struct botid_registry **regp);

/*
 * A registry like prev, with prev's configuration, for keys that changed
 * underneath (a rotation): bots whose current key is still the one prev
 * holds keep it. Errors only for BOTID_ERR_ALLOC.
 */
int	registry_rebuild(const struct botid_registry *prev,
	    struct botid_done *done, struct botid_registry **regp);

/* The served bot's key generation (0 until its first rotation). */
uint32_t registry_key_gen(const struct botid_bot *bot);

/* The backend holding the served bot's key. */
struct botid_backend *registry_backend(const struct botid_bot *bot);

/*
 * The TPM backend holding the host's attestation key and host key, or NULL
 * when the host is not provisioned (botid provision) or the TPM is down.
 */
struct botid_backend *registry_attest_backend(const struct botid_registry *reg);

/*
 * Deprovisioning: destroys the key of every bot reg serves and of every
 * bot with key state (all generations), and removes their state files
 * and cached certificates. Returns 0, or the first error (the rest are
 * still attempted); the registry's bots must not sign afterwards.
 */
int	registry_destroy_all(struct botid_registry *reg,
	    struct botid_done *done);

/* Finds a served bot by name, or NULL. */
struct botid_bot *registry_find(struct botid_registry *reg, const char *name);

/* Accessors for a served bot. */
const uint8_t *registry_spki(const struct botid_bot *bot, size_t *len);
struct botid_key *registry_key(const struct botid_bot *bot);
struct botid_pool *registry_pool(const struct botid_bot *bot);
/*
 * The bot's token key and its public key (DER SPKI), or NULL / *len 0
 * for a bot without scopes. Only the JWT builder (handle_jwt) and the
 * renewer, which certifies it, may use them: no other operation signs
 * with a token key.
 */
struct botid_key *registry_token_key(const struct botid_bot *bot);
const uint8_t *registry_token_spki(const struct botid_bot *bot, size_t *len);
/* 1 if the bot's key is an EC key, 0 for RSA. */
int	registry_key_is_ec(const struct botid_bot *bot);

/*
 * A configured bot that is not served because its backend was unavailable
 * when the registry was built (BOTID_ERR_UNAVAILABLE), or NULL. The
 * caller checks the policy before saying so: to anyone else it is denied.
 */
struct botid_bot *registry_find_unavailable(struct botid_registry *reg,
	    const char *name);

/* How many configured bots reg leaves unserved for an unavailable backend. */
size_t	registry_unavailable_count(const struct botid_registry *reg);

/*
 * Tries again to reach the backends of prev's unavailable bots: when at
 * least one of them now opens, a registry like prev (same configuration,
 * built as registry_rebuild does) into *regp, which may still leave some
 * bots unavailable; else *regp NULL and BOTID_ERR_UNAVAILABLE. Nothing in
 * prev changes. Errors: BOTID_ERR_UNAVAILABLE, _ALLOC.
 */
int	registry_retry(const struct botid_registry *prev,
	    struct botid_done *done, struct botid_registry **regp);

/*
 * A registry like prev in which the bots whose keys are in be are
 * unavailable (no key): once requests in flight on prev end, be is closed,
 * and registry_retry() opens it anew (a PKCS#11 module is initialised
 * again). Bots of other backends keep their keys. Errors: BOTID_ERR_ALLOC.
 */
int	registry_drop_backend(const struct botid_registry *prev,
	    const struct botid_backend *be, struct botid_registry **regp);

void	registry_ref(struct botid_registry *reg);
/* Drops a reference; the last one closes keys and backends no longer used. */
void	registry_unref(struct botid_registry *reg);

/*
 * pool_expire() on every open backend's pool at now_ns; *next_ns is the
 * earliest deadline still queued anywhere (0: none).
 */
void	registry_expire(uint64_t now_ns, uint64_t *next_ns);

/*
 * A background job came back through done. A creation: its key is handed
 * to the bot of reg (the current registry) that waits for it, else
 * closed; returns 1 if reg serves one more bot. The creation is freed, or
 * kept for registry_creations_retry() when the test gate held it back.
 * A proof of a key opened unproven (registry_build opens existing keys
 * without a device command and has the pool prove them): a key the
 * device refused is no longer served by reg's bots, as if it had failed
 * to open; returns 0.
 */
int	registry_creation_done(struct botid_registry *reg,
	    struct botid_job *job);

/*
 * Queues again the creations BOTID_TEST_CREATE_GATE held back (a test
 * hook: while the file it names does not exist, creations wait). Called
 * once a second.
 */
void	registry_creations_retry(void);

/*
 * The agent stops: key creations not begun are not begun (they come back
 * as held, and registry_creations_drop() frees them).
 */
void	registry_creations_cancel(void);

/* Key creations in a pool now (queued or running). */
size_t	registry_creations_in_pool(void);

/* Frees creations held back at shutdown (none is in a pool then). */
void	registry_creations_drop(void);

/* Pending jobs across every open backend (for draining on shutdown). */
size_t	registry_pending(void);

#endif /* BOTID_AGENT_REGISTRY_H */
