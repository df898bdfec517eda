/*
 * Unit tests for agent/audit-line.c: the direct formatter gives the bytes
 * jansson gives, for every combination of optional fields; text that
 * needs escaping (quotes, backslashes, control bytes, non-UTF-8, DEL)
 * goes through jansson and still parses back to what was logged; a line
 * that does not fit is refused; a line with no caller (an overflow count)
 * has null uid, gid, pid, exe and unit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "agent/audit-line.h"
#include "lib/error.h"

#define CAP	4096

static struct botid_peer peer;
static uint8_t prev[AUDITLOG_HASH_LEN];
static uint8_t digest[64];
static uint8_t data_sha256[32];
static const struct timespec when = { 1796281200, 123456789 };

static int
setup(void **state)
{
	size_t i;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	peer.uid = 1001;
	peer.gid = 4294967294u;
	peer.pid = 4242;
	strcpy(peer.exe, "/usr/local/bin/inventory-bot");
	peer.have_exe = 1;
	strcpy(peer.unit, "inventory@2.service");
	peer.have_unit = 1;
	for (i = 0; i < sizeof(prev); i++)
		prev[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(data_sha256); i++)
		data_sha256[i] = (uint8_t)(255 - i);
	return 0;
}

/* Formats ev both ways; they must agree byte for byte. */
static void
assert_same(const struct botid_audit_event *ev, uint64_t seq)
{
	char a[CAP], b[CAP];
	size_t alen, blen;

	assert_int_equal(audit_line_event(ev, seq, prev, &when, a, sizeof(a),
	    &alen), 0);
	assert_int_equal(audit_line_event_json(ev, seq, prev, &when, b,
	    sizeof(b), &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
}

static void
test_same_bytes_every_shape(void **state)
{
	struct botid_audit_event ev;
	unsigned mask;

	(void)state;
	for (mask = 0; mask < 256; mask++) {
		memset(&ev, 0, sizeof(ev));
		ev.op = "sign-digest";
		/* An overflow count keeps no caller: all five null. */
		ev.peer = mask & 128 ? NULL : &peer;
		ev.result = mask & 1 ? "ok" : "denied";
		ev.micros = mask * 1000003ull;
		peer.have_exe = (mask & 2) != 0;
		peer.have_unit = (mask & 4) != 0;
		if (mask & 8) {
			ev.bot = "inventory";
			ev.hash = mask & 16 ? "sha512" : NULL;
			ev.digest = digest;
			ev.digest_len = mask & 16 ? 64 : 32;
		}
		if (mask & 16)
			ev.data_sha256 = data_sha256;
		if (mask & 32)
			ev.detail = "rate limit: 100/s for uid 1001";
		/* An aggregated line's count (audit_note). */
		if (mask & 64)
			ev.count = 20000;
		assert_same(&ev, mask * 0x100000001ull);
	}
}

/* A line with no caller says so with nulls, not with made-up ids. */
static void
test_no_caller_nulls(void **state)
{
	static const char want[] = ",\"op\":\"pubkey\",\"bot\":null,"
	    "\"uid\":null,\"gid\":null,\"pid\":null,\"exe\":null,"
	    "\"unit\":null,\"result\":\"denied\",\"us\":7,\"count\":36,"
	    "\"detail\":\"other callers\"}";
	struct botid_audit_event ev = { .op = "pubkey", .result = "denied",
		.detail = "other callers", .micros = 7, .count = 36 };
	char out[CAP];
	size_t len;

	(void)state;
	assert_int_equal(audit_line_event(&ev, 3, prev, &when, out,
	    sizeof(out), &len), 0);
	assert_true(len > sizeof(want) - 1);
	assert_string_equal(out + len - (sizeof(want) - 1), want);
	assert_same(&ev, 3);
}

static void
test_same_bytes_oversized_digest(void **state)
{
	uint8_t big[65] = { 0 };
	struct botid_audit_event ev = { .op = "sign-digest", .bot = "b",
		.peer = &peer, .hash = "sha256", .digest = big,
		.digest_len = sizeof(big), .result = "error" };

	(void)state;
	/* Over 64 bytes the digest is left out, both ways. */
	assert_same(&ev, 7);
}

/* Text that jansson escapes: the direct path must hand it over. */
static void
test_escaped_text_round_trips(void **state)
{
	static const char *const texts[] = {
		"a \"quoted\" reason", "back\\slash", "tab\there",
		"new\nline", "del\x7f", "caf\xc3\xa9", "bad \xff byte",
	};
	struct botid_audit_event ev = { .op = "jwt", .bot = "b",
		.peer = &peer, .result = "error" };
	char out[CAP];
	json_error_t jerr;
	json_t *o;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		ev.detail = texts[i];
		strcpy(peer.exe, texts[i]);
		assert_same(&ev, i);
		assert_int_equal(audit_line_event(&ev, i, prev, &when, out,
		    sizeof(out), &len), 0);
		o = json_loadb(out, len, JSON_REJECT_DUPLICATES, &jerr);
		assert_non_null(o);
		/* Valid UTF-8 comes back as it was; other bytes become '?'. */
		if (i != 6) {
			assert_string_equal(json_string_value(
			    json_object_get(o, "detail")), texts[i]);
		} else {
			assert_string_equal(json_string_value(
			    json_object_get(o, "detail")), "bad ? byte");
		}
		json_decref(o);
	}
}

static void
test_head_fields_first(void **state)
{
	struct botid_audit_event ev = { .op = "list", .peer = &peer,
		.result = "ok" };
	char out[CAP];
	size_t len;
	static const char head[] = "{\"seq\":18446744073709551615,\"prev\":"
	    "\"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\","
	    "\"time\":\"2026-12-03T07:00:00.123456Z\",\"op\":\"list\","
	    "\"bot\":null,\"uid\":1001,\"gid\":4294967294,\"pid\":4242,";

	(void)state;
	assert_int_equal(audit_line_event(&ev, UINT64_MAX, prev, &when, out,
	    sizeof(out), &len), 0);
	assert_true(len > sizeof(head) - 1);
	assert_memory_equal(out, head, sizeof(head) - 1);
	assert_int_equal(out[len - 1], '}');
}

static void
test_too_large_refused(void **state)
{
	struct botid_audit_event ev = { .op = "list", .peer = &peer,
		.result = "ok", .detail = "a reason" };
	char out[CAP];
	size_t full, len, cap;

	(void)state;
	assert_int_equal(audit_line_event(&ev, 1, prev, &when, out,
	    sizeof(out), &full), 0);
	/* The line and its NUL fit exactly, and one byte less does not. */
	assert_int_equal(audit_line_event(&ev, 1, prev, &when, out, full + 1,
	    &len), 0);
	assert_int_equal(len, full);
	assert_int_equal(out[len], '\0');
	assert_int_equal(audit_line_event(&ev, 1, prev, &when, out, full,
	    &len), BOTID_ERR_TOO_LARGE);
	for (cap = 0; cap < full; cap += cap < 16 ? 1 : 37) {
		assert_int_equal(audit_line_event(&ev, 1, prev, &when, out,
		    cap, &len), BOTID_ERR_TOO_LARGE);
		assert_int_equal(len, 0);
	}
	ev.detail = "a \"quoted\" reason";
	assert_int_equal(audit_line_event(&ev, 1, prev, &when, out, 40,
	    &len), BOTID_ERR_TOO_LARGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_same_bytes_every_shape, setup),
		cmocka_unit_test_setup(test_same_bytes_oversized_digest, setup),
		cmocka_unit_test_setup(test_no_caller_nulls, setup),
		cmocka_unit_test_setup(test_escaped_text_round_trips, setup),
		cmocka_unit_test_setup(test_head_fields_first, setup),
		cmocka_unit_test_setup(test_too_large_refused, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
