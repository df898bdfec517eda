/*
 * Per-host token buckets (POST /v1/nonce): a host may take `burst` at
 * once and `per_minute` a minute after that. In memory: each replica
 * counts its own requests, and a restart forgets them.
 */
#ifndef BOTID_CA_RATELIMIT_H
#define BOTID_CA_RATELIMIT_H

#include <stddef.h>

struct ca_ratelimit;

/*
 * A limiter of per_minute tokens a minute, burst at most, for up to
 * BOTID_CA_RATE_HOSTS hosts at a time. Errors: BOTID_ERR_INVALID (a zero
 * rate or burst), _ALLOC.
 */
int	ca_ratelimit_new(unsigned per_minute, unsigned burst,
	    struct ca_ratelimit **rlp);
void	ca_ratelimit_free(struct ca_ratelimit *rl);

/*
 * Takes one token for key (a host ID, at most 16 characters) at now
 * (seconds of a monotonic clock). Returns 0, or BOTID_ERR_BUSY with
 * *retry_after the whole seconds until a token is there again and
 * *first 1 when this is the key's first refusal since it was last let
 * through (for one log line per episode, not per request). A key beyond
 * the table's room, after the keys back at a full bucket are dropped, is
 * let through uncounted. Errors: BOTID_ERR_INVALID (key too long).
 */
int	ca_ratelimit_take(struct ca_ratelimit *rl, const char *key,
	    double now, unsigned *retry_after, int *first);

#endif /* BOTID_CA_RATELIMIT_H */
