/*
 * Token buckets by host ID (ca-ratelimit.h). The table is bounded: only
 * enrolled hosts reach it (ca-api.c checks the host first), and a host
 * whose bucket has refilled is the same as one never seen, so such
 * entries are dropped when room is needed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca-ratelimit.h"
#include "lib/botid.h"
#include "lib/limits.h"

#define RATE_BUCKETS	4096u	/* hash chains; a power of two */
#define RATE_KEY_MAX	16u

struct rate_entry {
	struct rate_entry	*next;
	char			 key[RATE_KEY_MAX + 1];
	double			 tokens;
	double			 last;		/* tokens' time */
	int			 refused;	/* since let through */
};

struct ca_ratelimit {
	double			 per_second;
	double			 burst;
	size_t			 count;
	struct rate_entry	*chains[RATE_BUCKETS];
};

int
ca_ratelimit_new(unsigned per_minute, unsigned burst,
    struct ca_ratelimit **rlp)
{
	struct ca_ratelimit *rl;

	*rlp = NULL;
	if (per_minute == 0 || burst == 0)
		return BOTID_ERR_INVALID;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return BOTID_ERR_ALLOC;
	rl->per_second = per_minute / 60.0;
	rl->burst = burst;
	*rlp = rl;
	return 0;
}

void
ca_ratelimit_free(struct ca_ratelimit *rl)
{
	struct rate_entry *e, *next;
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < RATE_BUCKETS; i++)
		for (e = rl->chains[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(rl);
}

/* FNV-1a: keys are host IDs the CA checked, not chosen to collide. */
static size_t
chain_of(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h & (RATE_BUCKETS - 1);
}

/* Refills e to now. */
static void
refill(const struct ca_ratelimit *rl, struct rate_entry *e, double now)
{
	if (now > e->last) {
		e->tokens += (now - e->last) * rl->per_second;
		if (e->tokens > rl->burst)
			e->tokens = rl->burst;
	}
	e->last = now;
}

/* Drops the entries whose bucket is full again: they hold nothing. */
static void
sweep(struct ca_ratelimit *rl, double now)
{
	struct rate_entry **pp, *e;
	size_t i;

	for (i = 0; i < RATE_BUCKETS; i++)
		for (pp = &rl->chains[i]; (e = *pp) != NULL;) {
			refill(rl, e, now);
			if (e->tokens >= rl->burst) {
				*pp = e->next;
				free(e);
				rl->count--;
			} else
				pp = &e->next;
		}
}

int
ca_ratelimit_take(struct ca_ratelimit *rl, const char *key, double now,
    unsigned *retry_after, int *first)
{
	struct rate_entry *e;
	size_t c, len = strlen(key);
	double wait;

	*retry_after = 0;
	*first = 0;
	if (len == 0 || len > RATE_KEY_MAX)
		return BOTID_ERR_INVALID;
	c = chain_of(key);
	for (e = rl->chains[c]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if (rl->count >= BOTID_CA_RATE_HOSTS)
			sweep(rl, now);
		if (rl->count >= BOTID_CA_RATE_HOSTS ||
		    (e = calloc(1, sizeof(*e))) == NULL)
			return 0;	/* uncounted, as documented */
		memcpy(e->key, key, len + 1);
		e->tokens = rl->burst;
		e->last = now;
		e->next = rl->chains[c];
		rl->chains[c] = e;
		rl->count++;
	}
	refill(rl, e, now);
	if (e->tokens >= 1.0) {
		e->tokens -= 1.0;
		e->refused = 0;
		return 0;
	}
	/* Rounded up: a client that waits that long finds a token. */
	wait = (1.0 - e->tokens) / rl->per_second;
	*retry_after = (unsigned)wait + (wait > (unsigned)wait ? 1u : 0u);
	if (*retry_after == 0)
		*retry_after = 1;
	*first = !e->refused;
	e->refused = 1;
	return BOTID_ERR_BUSY;
}
