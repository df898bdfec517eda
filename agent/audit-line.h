/*
 * One audit entry as its line of JSON (doc/audit.md): seq, prev and time
 * first, then the event's fields, in the order jansson's compact dump
 * gives them. An event whose text needs no escaping (the usual case: op,
 * bot and result are ours, exe is a plain path) is formatted directly;
 * any other goes through jansson. Both give the same bytes.
 */
#ifndef BOTID_AGENT_AUDIT_LINE_H
#define BOTID_AGENT_AUDIT_LINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "agent/audit.h"
#include "lib/auditlog.h"

/* "2026-12-03T07:00:00.123456Z" and its NUL. */
#define AUDIT_LINE_TIME_LEN	28

/* now as an entry's "time" is written. */
void	audit_line_time(const struct timespec *now,
	    char out[AUDIT_LINE_TIME_LEN]);
/* A new JSON object holding seq, prev and time; NULL without memory. */
json_t	*audit_line_head(uint64_t seq, const uint8_t prev[AUDITLOG_HASH_LEN],
	    const struct timespec *now);
/*
 * Writes ev's line, without a newline, and a NUL into out[cap], and its
 * length into *len. Errors: BOTID_ERR_TOO_LARGE, BOTID_ERR_ALLOC.
 */
int	audit_line_event(const struct botid_audit_event *ev, uint64_t seq,
	    const uint8_t prev[AUDITLOG_HASH_LEN], const struct timespec *now,
	    char *out, size_t cap, size_t *len);
/* The same, always through jansson: the reference the direct path meets. */
int	audit_line_event_json(const struct botid_audit_event *ev, uint64_t seq,
	    const uint8_t prev[AUDITLOG_HASH_LEN], const struct timespec *now,
	    char *out, size_t cap, size_t *len);

#endif /* BOTID_AGENT_AUDIT_LINE_H */
