/*
 * Audit lines (audit-line.h). The direct path exists for speed: building
 * the entry as a jansson object cost about 5 us per signature, as much as
 * the rest of the agent's own work. It takes only text that jansson would
 * copy as it is (printable ASCII other than '"' and '\'), so its output is
 * the jansson output; test-audit-line compares the two.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/audit-line.h"
#include "lib/error.h"
#include "lib/hex.h"

static void
time_format(const struct timespec *now, char out[AUDIT_LINE_TIME_LEN])
{
	struct tm tm;
	size_t len;

	gmtime_r(&now->tv_sec, &tm);
	len = strftime(out, AUDIT_LINE_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + len, AUDIT_LINE_TIME_LEN - len, ".%06ldZ",
	    now->tv_nsec / 1000);
}

void
audit_line_time(const struct timespec *now, char out[AUDIT_LINE_TIME_LEN])
{
	time_format(now, out);
}

json_t *
audit_line_head(uint64_t seq, const uint8_t prev[AUDITLOG_HASH_LEN],
    const struct timespec *now)
{
	char ts[AUDIT_LINE_TIME_LEN], hex[2 * AUDITLOG_HASH_LEN + 1];
	json_t *o;

	time_format(now, ts);
	hex_encode(prev, AUDITLOG_HASH_LEN, hex);
	if ((o = json_object()) == NULL)
		return NULL;
	if (json_object_set_new(o, "seq", json_integer((json_int_t)seq)) != 0 ||
	    json_object_set_new(o, "prev", json_string(hex)) != 0 ||
	    json_object_set_new(o, "time", json_string(ts)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A JSON string for text a caller controls (an exe path may not be UTF-8). */
static json_t *
jstr(const char *s)
{
	json_t *j;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Whether jansson would write s between quotes unchanged (NULL: null). */
static int
plain(const char *s)
{
	if (s == NULL)
		return 1;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    *s == '"' || *s == '\\')
			return 0;
	return 1;
}

/* Appends to out[cap] at *pos; 0, or BOTID_ERR_TOO_LARGE. */
static int __attribute__((format(printf, 4, 5)))
put(char *out, size_t cap, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= cap)
		return BOTID_ERR_TOO_LARGE;
	va_start(ap, fmt);
	n = vsnprintf(out + *pos, cap - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *pos)
		return BOTID_ERR_TOO_LARGE;
	*pos += (size_t)n;
	return 0;
}

/* ,"key":"s" or ,"key":null */
static int
put_str(char *out, size_t cap, size_t *pos, const char *key, const char *s)
{
	return s == NULL ? put(out, cap, pos, ",\"%s\":null", key) :
	    put(out, cap, pos, ",\"%s\":\"%s\"", key, s);
}

int
audit_line_event(const struct botid_audit_event *ev, uint64_t seq,
    const uint8_t prev[AUDITLOG_HASH_LEN], const struct timespec *now,
    char *out, size_t cap, size_t *len)
{
	const struct botid_peer *peer = ev->peer;
	char ts[AUDIT_LINE_TIME_LEN], hex[2 * 64 + 1];
	size_t pos = 0;
	int r;

	*len = 0;
	if (!plain(ev->op) || !plain(ev->bot) || ev->result == NULL ||
	    !plain(ev->result) || !plain(ev->detail) ||
	    (peer != NULL && peer->have_exe && !plain(peer->exe)) ||
	    (peer != NULL && peer->have_unit && !plain(peer->unit)) ||
	    (ev->digest != NULL && ev->digest_len <= 64 && !plain(ev->hash)))
		return audit_line_event_json(ev, seq, prev, now, out, cap, len);
	time_format(now, ts);
	hex_encode(prev, AUDITLOG_HASH_LEN, hex);
	if ((r = put(out, cap, &pos, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\","
	    "\"time\":\"%s\"", seq, hex, ts)) != 0 ||
	    (r = put_str(out, cap, &pos, "op", ev->op)) != 0 ||
	    (r = put_str(out, cap, &pos, "bot", ev->bot)) != 0 ||
	    (r = peer == NULL ?
	    put(out, cap, &pos, ",\"uid\":null,\"gid\":null,\"pid\":null") :
	    put(out, cap, &pos, ",\"uid\":%lld,\"gid\":%lld,\"pid\":%lld",
	    (long long)peer->uid, (long long)peer->gid,
	    (long long)peer->pid)) != 0 ||
	    (r = put_str(out, cap, &pos, "exe", peer != NULL &&
	    peer->have_exe ? peer->exe : NULL)) != 0 ||
	    (r = put_str(out, cap, &pos, "unit", peer != NULL &&
	    peer->have_unit ? peer->unit : NULL)) != 0 ||
	    (r = put_str(out, cap, &pos, "result", ev->result)) != 0 ||
	    (r = put(out, cap, &pos, ",\"us\":%lld",
	    (long long)(json_int_t)ev->micros)) != 0)
		return r;
	if (ev->count != 0 && (r = put(out, cap, &pos, ",\"count\":%lld",
	    (long long)(json_int_t)ev->count)) != 0)
		return r;
	if (ev->digest != NULL && ev->digest_len <= 64) {
		hex_encode(ev->digest, ev->digest_len, hex);
		if ((r = put_str(out, cap, &pos, "hash", ev->hash)) != 0 ||
		    (r = put_str(out, cap, &pos, "digest", hex)) != 0)
			return r;
	}
	if (ev->data_sha256 != NULL) {
		hex_encode(ev->data_sha256, 32, hex);
		if ((r = put_str(out, cap, &pos, "sha256", hex)) != 0)
			return r;
	}
	if (ev->detail != NULL &&
	    (r = put_str(out, cap, &pos, "detail", ev->detail)) != 0)
		return r;
	if ((r = put(out, cap, &pos, "}")) != 0)
		return r;
	*len = pos;
	return 0;
}

int
audit_line_event_json(const struct botid_audit_event *ev, uint64_t seq,
    const uint8_t prev[AUDITLOG_HASH_LEN], const struct timespec *now,
    char *out, size_t cap, size_t *len)
{
	const struct botid_peer *peer = ev->peer;
	json_t *o = NULL;
	char *text = NULL, hex[2 * 64 + 1];
	size_t n;
	int r = BOTID_ERR_ALLOC;

	*len = 0;
	if ((o = audit_line_head(seq, prev, now)) == NULL)
		goto out;
	if (json_object_set_new(o, "op", jstr(ev->op)) != 0 ||
	    json_object_set_new(o, "bot", jstr(ev->bot)) != 0 ||
	    json_object_set_new(o, "uid", peer != NULL ?
	    json_integer(peer->uid) : json_null()) != 0 ||
	    json_object_set_new(o, "gid", peer != NULL ?
	    json_integer(peer->gid) : json_null()) != 0 ||
	    json_object_set_new(o, "pid", peer != NULL ?
	    json_integer(peer->pid) : json_null()) != 0 ||
	    json_object_set_new(o, "exe", peer != NULL && peer->have_exe ?
	    jstr(peer->exe) : json_null()) != 0 ||
	    json_object_set_new(o, "unit", peer != NULL && peer->have_unit ?
	    jstr(peer->unit) : json_null()) != 0 ||
	    json_object_set_new(o, "result", json_string(ev->result)) != 0 ||
	    json_object_set_new(o, "us",
	    json_integer((json_int_t)ev->micros)) != 0)
		goto out;
	if (ev->count != 0 && json_object_set_new(o, "count",
	    json_integer((json_int_t)ev->count)) != 0)
		goto out;
	if (ev->digest != NULL && ev->digest_len <= 64) {
		hex_encode(ev->digest, ev->digest_len, hex);
		if (json_object_set_new(o, "hash", jstr(ev->hash)) != 0 ||
		    json_object_set_new(o, "digest", json_string(hex)) != 0)
			goto out;
	}
	if (ev->data_sha256 != NULL) {
		hex_encode(ev->data_sha256, 32, hex);
		if (json_object_set_new(o, "sha256", json_string(hex)) != 0)
			goto out;
	}
	if (ev->detail != NULL &&
	    json_object_set_new(o, "detail", jstr(ev->detail)) != 0)
		goto out;
	if ((text = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	if ((n = strlen(text)) >= cap) {
		r = BOTID_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(out, text, n + 1);
	*len = n;
	r = 0;
 out:
	free(text);
	json_decref(o);
	return r;
}
