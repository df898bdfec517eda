/*
 * Unit tests for agent/audit.c's aggregated lines while the log cannot be
 * written (doc/audit.md, "Aggregated lines"): write(2) on the log is
 * wrapped by the linker to fail with ENOSPC, as on a full disk. More kinds
 * of denial than the 64 slots, more op and result pairs than the overflow
 * slots, and an event too large for a slot are all counted, and the lines
 * written once the log works again add up to exactly the events; a close
 * with counts still unwritten says how many in the agent's log. The TPM,
 * registry and anchor are stubs: no checkpoint is signed here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "agent/anchor.h"
#include "agent/audit.h"
#include "agent/backend.h"
#include "agent/registry.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"

#define OVERFLOW_DETAIL	"other callers, counted while the log was full"

static char dir[64];
static char log_path[128];
static int disk_full;		/* write(2) fails with ENOSPC */
static char last_err[1024];	/* the last error the agent logged */

ssize_t	__wrap_write(int, const void *, size_t);
ssize_t	__real_write(int, const void *, size_t);
void	__wrap_log_msg(enum botid_log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

ssize_t
__wrap_write(int fd, const void *p, size_t len)
{
	if (disk_full) {
		errno = ENOSPC;
		return -1;
	}
	return __real_write(fd, p, len);
}

void
__wrap_log_msg(enum botid_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level != BOTID_LOG_ERR)
		return;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
}

/* Stubs: no host key, no registry, no CA. */
struct botid_backend *
registry_attest_backend(const struct botid_registry *reg)
{
	(void)reg;
	return NULL;
}

void
registry_ref(struct botid_registry *reg)
{
	(void)reg;
}

void
registry_unref(struct botid_registry *reg)
{
	(void)reg;
}

int
backend_tpm_host_sign(struct botid_backend *be, const uint8_t digest[32],
    uint8_t **sig, size_t *sig_len)
{
	(void)be;
	(void)digest;
	*sig = NULL;
	*sig_len = 0;
	return BOTID_ERR_UNAVAILABLE;
}

int
anchor_start(const char *state_dir)
{
	(void)state_dir;
	return 0;
}

void
anchor_enqueue(const char *line, size_t len)
{
	(void)line;
	(void)len;
}

void
anchor_stop(void)
{
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-audit.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(log_path, sizeof(log_path), "%s/audit.log", dir);
	disk_full = 0;
	last_err[0] = '\0';
	return audit_open(log_path) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	disk_full = 0;
	audit_close();
	unlink(log_path);
	rmdir(dir);
	return 0;
}

/* One event as the server notes a denial or read. */
static void
note(const char *op, const char *result, const char *bot, pid_t pid)
{
	struct botid_peer peer;
	struct botid_audit_event ev;

	memset(&peer, 0, sizeof(peer));
	peer.uid = 1001;
	peer.gid = 1001;
	peer.pid = pid;
	snprintf(peer.exe, sizeof(peer.exe), "/usr/bin/botid");
	peer.have_exe = 1;
	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.bot = bot;
	ev.peer = &peer;
	ev.result = result;
	ev.micros = (uint64_t)pid;
	audit_note(&ev);
}

struct sums {
	uint64_t all;		/* every count */
	uint64_t pubkey_denied;
	uint64_t other;		/* op and result "other" */
	uint64_t overflow;	/* on lines with no caller */
	size_t lines;
};

/* Sums the counts of the log's lines (a line without count is one). */
static void
log_sums(struct sums *s)
{
	json_error_t jerr;
	json_t *e;
	const char *op, *result, *detail;
	char buf[BOTID_MAX_AUDIT_LINE];
	uint64_t n;
	FILE *f;

	memset(s, 0, sizeof(*s));
	assert_non_null(f = fopen(log_path, "r"));
	while (fgets(buf, sizeof(buf), f) != NULL) {
		assert_non_null(e = json_loads(buf, 0, &jerr));
		s->lines++;
		n = json_object_get(e, "count") != NULL ?
		    (uint64_t)json_integer_value(json_object_get(e, "count")) :
		    1;
		op = json_string_value(json_object_get(e, "op"));
		result = json_string_value(json_object_get(e, "result"));
		detail = json_string_value(json_object_get(e, "detail"));
		assert_non_null(op);
		assert_non_null(result);
		s->all += n;
		if (strcmp(op, "pubkey") == 0 && strcmp(result, "denied") == 0)
			s->pubkey_denied += n;
		if (strcmp(op, "other") == 0 && strcmp(result, "other") == 0)
			s->other += n;
		if (json_is_null(json_object_get(e, "uid"))) {
			/* No caller at all, and says why. */
			assert_true(json_is_null(json_object_get(e, "gid")));
			assert_true(json_is_null(json_object_get(e, "pid")));
			assert_true(json_is_null(json_object_get(e, "exe")));
			assert_true(json_is_null(json_object_get(e, "unit")));
			assert_true(json_is_null(json_object_get(e, "bot")));
			assert_non_null(detail);
			assert_string_equal(detail, OVERFLOW_DETAIL);
			assert_non_null(json_object_get(e, "count"));
			s->overflow += n;
		}
		json_decref(e);
	}
	fclose(f);
}

/* 100 callers denied on a full log: 100 counted, none dropped. */
static void
test_more_kinds_than_slots(void **state)
{
	struct sums s;
	pid_t pid;

	(void)state;
	disk_full = 1;
	for (pid = 1000; pid < 1100; pid++)
		note("pubkey", "denied", "locked", pid);
	/* The same callers again: counted in their slots or the overflow. */
	for (pid = 1000; pid < 1100; pid++)
		note("pubkey", "denied", "locked", pid);
	disk_full = 0;
	audit_flush();
	log_sums(&s);
	assert_int_equal(s.pubkey_denied, 200);
	assert_int_equal(s.all, 200);
	/* 64 slots took a caller each; the other 36 had no slot. */
	assert_int_equal(s.overflow, 2 * (100 - BOTID_AUDIT_AGGREGATE_SLOTS));
	assert_int_equal(s.lines, BOTID_AUDIT_AGGREGATE_SLOTS + 1);
	assert_int_equal(s.other, 0);
}

/*
 * More op and result pairs than the overflow slots, and an event no slot
 * can hold (its op too long) whose line cannot be written: the last
 * overflow slot counts them as "other".
 */
static void
test_more_pairs_than_overflow_slots(void **state)
{
	char op[32], too_long[48];
	struct sums s;
	size_t i, pairs = BOTID_AUDIT_OVERFLOW_SLOTS + 6;

	(void)state;
	disk_full = 1;
	for (i = 0; i < BOTID_AUDIT_AGGREGATE_SLOTS; i++)
		note("list", "ok", NULL, (pid_t)(2000 + i));
	for (i = 0; i < pairs; i++) {
		snprintf(op, sizeof(op), "op-%02zu", i);
		note(op, "denied", NULL, (pid_t)(3000 + i));
	}
	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	note(too_long, "denied", NULL, 4000);
	disk_full = 0;
	audit_flush();
	log_sums(&s);
	assert_int_equal(s.all, BOTID_AUDIT_AGGREGATE_SLOTS + pairs + 1);
	assert_int_equal(s.overflow, pairs + 1);
	/* All but the last overflow slot hold a pair; the rest is "other". */
	assert_int_equal(s.other, pairs - (BOTID_AUDIT_OVERFLOW_SLOTS - 1) + 1);
}

/* Counts the log still cannot take at close are named, exactly. */
static void
test_close_says_what_is_lost(void **state)
{
	struct sums s;
	pid_t pid;

	(void)state;
	note("pubkey", "denied", "locked", 1);
	disk_full = 1;
	for (pid = 10; pid < 13; pid++)
		note("pubkey", "denied", "locked", pid);
	note("pubkey", "denied", "locked", 10);
	audit_flush();
	audit_close();
	assert_string_equal(last_err, "audit: 4 counted events (3 lines) "
	    "could not be written before the log closed: lost");
	disk_full = 0;
	log_sums(&s);
	assert_int_equal(s.all, 1);
	/* Nothing carried into the next log. */
	assert_int_equal(audit_open(log_path), 0);
	audit_flush();
	log_sums(&s);
	assert_int_equal(s.all, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_more_kinds_than_slots,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_more_pairs_than_overflow_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_says_what_is_lost,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
