/*
 * A bot's keys across rotations, in STATE_DIR/keys/BOT.json (0600): the
 * current key's generation, a key being made (so that a crash leaves a
 * name to clean up, never an unknown object), and the retired keys
 * waiting for their grace period to end. Which backend held them is
 * recorded too, so the keys of a bot removed from the configuration can
 * still be found and destroyed. The file is replaced atomically: at any
 * instant it names exactly one current key, which exists.
 */
#ifndef BOTID_AGENT_ROTATION_H
#define BOTID_AGENT_ROTATION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/config.h"
#include "lib/limits.h"

#define ROTATION_MAX_RETIRED	8u

struct rotation_retired {
	uint32_t	gen;
	char		serial[80];	/* its certificate's, hex; "" for none */
	time_t		destroy_after;
	int		destroyed;	/* key gone, revocation still to do */
};

struct rotation_state {
	char			 bot[BOTID_MAX_BOT_NAME + 1];
	/* Where the keys live (from the configuration when first seen). */
	enum botid_backend_kind	 backend;
	enum botid_key_type	 key_type;
	char			*module;
	char			*token_label;
	char			*pin_file;
	char			*pin_credential;
	uint32_t		 gen;		/* the current key */
	time_t			 created;	/* when it became current */
	uint32_t		 pending;	/* 0: none being made */
	/* One more than the limit: removal retires the current key too. */
	struct rotation_retired	 retired[ROTATION_MAX_RETIRED + 1];
	size_t			 nretired;
	/*
	 * The bot left the configuration: every key is destroyed, and the
	 * retired entries only wait for their certificates' revocation.
	 */
	int			 removed;
};

/*
 * Reads bot's state. BOTID_ERR_NOT_FOUND when there is none (a bot whose
 * only key is generation 0); _INVALID (malformed, logged), _IO, _ALLOC.
 */
int	rotation_load(const char *state_dir, const char *bot,
	    struct rotation_state *st);

/* Writes st atomically (temporary file, fsync, rename; 0600). */
int	rotation_save(const char *state_dir, const struct rotation_state *st);

/*
 * Takes the lock of bot's state file (STATE_DIR/keys/.BOT.lock, 0600, an
 * flock): whoever reads the state, changes it and writes it back holds it
 * throughout, so that no update is lost (a reload forgetting the bot, a
 * rotation, a retirement; other processes too). With wait 0 it does not
 * block: BOTID_ERR_BUSY when someone holds it. *fdp is the lock, for
 * rotation_unlock(). Errors: _BUSY, _IO (logged), _ALLOC.
 */
int	rotation_lock(const char *state_dir, const char *bot, int wait,
	    int *fdp);

/* Releases a lock taken by rotation_lock(); -1 is ignored. */
void	rotation_unlock(int fd);

/* Removes bot's state file (its keys are gone). Missing is fine. */
int	rotation_remove(const char *state_dir, const char *bot);

/* A fresh state for bot at generation 0, backend details from cfg. */
int	rotation_init(const struct botid_bot_config *cfg,
	    struct rotation_state *st);

void	rotation_free(struct rotation_state *st);

/*
 * The bots that have a state file, for finding those gone from the
 * configuration: *names is an array of *n strings, all to free().
 */
int	rotation_list(const char *state_dir, char ***names, size_t *n);

/* The key name of bot's generation gen: "BOT" for 0, else "BOT~GEN". */
void	rotation_key_name(const char *bot, uint32_t gen,
	    char name[BOTID_MAX_KEY_NAME + 1]);

/*
 * A bot configuration naming the key of generation gen of st's bot, for
 * the backends' key_open and key_remove (strings point into st and into
 * name, which must outlive *cfg).
 */
void	rotation_key_config(const struct rotation_state *st, uint32_t gen,
	    char name[BOTID_MAX_KEY_NAME + 1], struct botid_bot_config *cfg);

/*
 * Destroys the key named kc->name and the token key beside it
 * (kc->name + BOTID_TOKEN_KEY_SUFFIX): a generation's keys go together.
 * Returns the first error other than _NOT_FOUND, else the signing key's
 * result (0 or BOTID_ERR_NOT_FOUND).
 */
struct botid_backend;
int	rotation_key_remove(struct botid_backend *be,
	    const struct botid_bot_config *kc);

/*
 * How many retired entries st may hold: ROTATION_MAX_RETIRED while the bot
 * is configured, one more once it is removed (its current key retired).
 */
size_t	rotation_retired_max(const struct rotation_state *st);

/*
 * Appends a zeroed retired entry to st for the caller to fill, unless st
 * already holds limit entries (limit at most ROTATION_MAX_RETIRED + 1).
 * *rt points into st on success, NULL otherwise. Errors: BOTID_ERR_BUSY
 * (full: older entries still wait), _INTERNAL (limit past the array).
 */
int	rotation_retired_add(struct rotation_state *st, size_t limit,
	    struct rotation_retired **rt);

/*
 * Destroys every key of st (current, being made, retired) through be,
 * marking them destroyed in st: the current one becomes a retired entry
 * with serial (its certificate, "" for none), and st->removed is set.
 * The caller saves st. Errors from key_remove (not _NOT_FOUND) stop it;
 * BOTID_ERR_BUSY when st has no room left to retire the current key (st
 * is then left as it was).
 */
struct botid_backend;
int	rotation_destroy_all(struct rotation_state *st, struct botid_backend *be,
	    const char *serial);

/* The serial (hex) of the cached certificate STATE_DIR/certs/BOT.pem. */
int	rotation_cached_serial(const char *state_dir, const char *bot,
	    char *serial, size_t len);

/* Removes STATE_DIR/certs/BOT.pem and BOT+jwt.pem; missing is fine. */
void	rotation_uncache(const char *state_dir, const char *bot);

/*
 * Test hook: when the environment variable BOTID_TEST_CRASH_AT equals
 * step, the agent kills itself with SIGKILL there (rotation tests).
 */
void	rotation_crash_point(const char *step);

/*
 * Test hook: when BOTID_TEST_PAUSE_AT equals "step:bot", the calling
 * thread waits there until the file named by BOTID_TEST_PAUSE_FILE exists
 * (tests that change the configuration while a rotation runs).
 */
void	rotation_pause_point(const char *step, const char *bot);

#endif /* BOTID_AGENT_ROTATION_H */
