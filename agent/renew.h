/*
 * Bot certificates: obtains one from botid-ca for every served bot at
 * start, renews it at half of its lifetime, retries with backoff while the
 * CA is down (the current certificate keeps being served until it expires)
 * and caches chains in STATE_DIR/certs/BOT.pem (public data). Key
 * rotation (rotate_every, botid rotate) runs here too, since a new key
 * needs a certificate before it is served (rotation.h). CA traffic
 * and TPM certification run on one worker thread; everything else, like
 * the registry, belongs to the event loop thread.
 */
#ifndef BOTID_AGENT_RENEW_H
#define BOTID_AGENT_RENEW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/config.h"
#include "agent/registry.h"
#include "lib/botid.h"

struct botid_renewer;

/*
 * Starts the renewer if the host is provisioned (STATE_DIR/attest).
 * Errors: BOTID_ERR_NOT_FOUND (not provisioned: no certificates),
 * _CONFIG (damaged provisioning state, logged), _ALLOC, _INTERNAL.
 */
int	renew_open(const struct botid_agent_config *cfg,
	    struct botid_renewer **rp);

/* The eventfd that becomes readable when results wait for renew_finish. */
int	renew_fd(const struct botid_renewer *rn);

/* Starts renewals that are due for the bots reg serves. Loop thread. */
void	renew_tick(struct botid_renewer *rn, struct botid_registry *reg);

/*
 * Installs finished renewals and rotations and drops their registry
 * references. Returns 1 when a rotation made a new key current: the
 * caller then rebuilds the registry (registry_rebuild) to serve it.
 */
int	renew_finish(struct botid_renewer *rn);

/*
 * A deprovisioning asked with renew_deprovision() is over: result 0 when
 * the host is revoked at the CA (error then "" or, when the CA said the
 * host was revoked already, a line saying so), else BOTID_ERR_* and why.
 */
typedef void (*renew_done_fn)(void *cookie, int result, const char *error);

/*
 * Revokes the host at the CA (botid deprovision), which revokes every
 * certificate issued to it, after what the worker is doing. done(cookie,
 * ...) is called from renew_finish(); if the renewer closes first, cookie
 * is passed to free(). Errors: BOTID_ERR_NOT_FOUND (not provisioned),
 * _UNAVAILABLE (the TPM with the host key is down), _ALLOC.
 */
int	renew_deprovision(struct botid_renewer *rn, struct botid_registry *reg,
	    renew_done_fn done, void *cookie);

/* A rotation asked with renew_rotate() is over: result 0 or BOTID_ERR_*. */
typedef void (*renew_rotated_fn)(void *cookie, int result, const char *error,
	    uint32_t gen);

/*
 * Rotates bot's key now (botid rotate), after whatever the worker is
 * doing for the bot: a new key is made in the same backend, certified,
 * then made current; the old one is destroyed and its certificate
 * revoked rotate_grace later. done(cookie, ...) is called from
 * renew_finish() once the new key is current, or the rotation failed,
 * and before the registry is rebuilt; if the renewer closes first, cookie
 * is passed to free() instead. Errors: BOTID_ERR_NOT_FOUND (no
 * renewer: the host is not provisioned), _BUSY (a rotation is already
 * due), _UNAVAILABLE (key or TPM unusable now), _ALLOC.
 */
int	renew_rotate(struct botid_renewer *rn, struct botid_registry *reg,
	    struct botid_bot *bot, renew_rotated_fn done, void *cookie);

/*
 * The chain (DER, leaf first) currently held for bot, if its leaf is for
 * the key spki and has not expired; otherwise *n = 0. The blobs stay valid
 * until the next renew_finish() or renew_tick(). Loop thread.
 */
void	renew_chain(struct botid_renewer *rn, const char *bot,
	    const uint8_t *spki, size_t spki_len,
	    const struct botid_blob **certs, size_t *n);

/* A bot's certificate and its last renewal, as renew_status() sees them. */
/*
 * The bot's SSH user certificate blob from botid-ca (POST /v1/ssh/certify),
 * fetched with each certificate for its current key spki, while it and the
 * X.509 certificate are valid; else *cert NULL. Valid until the next
 * renew_finish(). The CA without an SSH key: never one.
 */
void	renew_ssh_cert(struct botid_renewer *rn, const char *bot,
	    const uint8_t *spki, size_t spki_len, const uint8_t **cert,
	    size_t *len);

struct renew_status {
	char	serial[80];	/* the served leaf's serial, hex; "" for none */
	time_t	not_after;	/* 0: no valid certificate */
	time_t	attempted;	/* the last finished renewal; 0: none yet */
	int	ok;		/* it succeeded */
	char	error[256];	/* why it failed; "" when it did not */
};

/*
 * Copies bot's certificate and renewal state into *st (all zero for a
 * bot the renewer does not know, or a NULL rn). Results reach this state
 * only through renew_finish(), so loop-thread callers see it whole.
 */
void	renew_status(struct botid_renewer *rn, const char *bot,
	    struct renew_status *st);

/* Stops the worker (waiting for a request in progress) and frees rn. */
void	renew_close(struct botid_renewer *rn);

#endif /* BOTID_AGENT_RENEW_H */
