/*
 * Unit tests for the retired-key bounds of agent/rotation.c: the state
 * decoder takes at most ROTATION_MAX_RETIRED entries, one more only for
 * a removed bot; entries are added only within the array; a removal that
 * finds no room leaves the state and the keys as they were; the state
 * file's lock excludes other writers, so that no update is lost. Run under
 * ASan (CI's sanitizer stage), a write past the array is a failure too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/backend.h"
#include "agent/rotation.h"
#include "lib/error.h"

static char tmpdir[64];
static unsigned removes;	/* key_remove calls of the fake backend */

static int
fake_key_remove(struct botid_backend *be, const struct botid_bot_config *bot)
{
	(void)be;
	(void)bot;
	removes++;
	return 0;
}

static const struct botid_backend_ops fake_ops = {
	.name = "fake",
	.key_remove = fake_key_remove,
};
static struct botid_backend fake_be = { &fake_ops };

/* Writes keys/BOT.json: generation 20, n retired entries (gens 1..n). */
static void
write_state(const char *bot, int removed, size_t n)
{
	char path[256];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/keys/%s.json", tmpdir, bot);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fchmod(fileno(f), 0600), 0);
	fprintf(f, "{\"bot\": \"%s\", \"backend\": \"tpm\", "
	    "\"key_type\": \"ecdsa-p256\", \"gen\": 20, \"created\": 1, "
	    "\"pending\": 0, \"removed\": %s, \"retired\": [", bot,
	    removed ? "true" : "false");
	for (i = 0; i < n; i++)
		fprintf(f, "%s{\"gen\": %zu, \"serial\": \"0A%02zx\", "
		    "\"destroy_after\": 0, \"destroyed\": %s}", i ? ", " : "",
		    i + 1, i, removed ? "true" : "false");
	fprintf(f, "]}\n");
	assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
	char keys[128];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-rotation.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(keys, sizeof(keys), "%s/keys", tmpdir);
	return mkdir(keys, 0700);
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_load_max(void **state)
{
	struct rotation_state st;

	(void)state;
	write_state("b8", 0, ROTATION_MAX_RETIRED);
	assert_int_equal(rotation_load(tmpdir, "b8", &st), 0);
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED);
	assert_int_equal(st.removed, 0);
	rotation_free(&st);
}

/* The entry a removal adds is no room for a configured bot to use. */
static void
test_load_max_plus_one_refused(void **state)
{
	struct rotation_state st;

	(void)state;
	write_state("b9", 0, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(rotation_load(tmpdir, "b9", &st), BOTID_ERR_INVALID);
	assert_int_equal(st.nretired, 0);
}

static void
test_load_removed(void **state)
{
	struct rotation_state st;

	(void)state;
	write_state("r9", 1, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(rotation_load(tmpdir, "r9", &st), 0);
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(st.removed, 1);
	rotation_free(&st);
	write_state("r10", 1, ROTATION_MAX_RETIRED + 2);
	assert_int_equal(rotation_load(tmpdir, "r10", &st), BOTID_ERR_INVALID);
	write_state("r100", 1, 100);
	assert_int_equal(rotation_load(tmpdir, "r100", &st), BOTID_ERR_INVALID);
}

static void
test_retired_add(void **state)
{
	struct rotation_state st;
	struct rotation_retired *rt = NULL;
	size_t i;

	(void)state;
	memset(&st, 0, sizeof(st));
	for (i = 0; i < ROTATION_MAX_RETIRED; i++) {
		assert_int_equal(rotation_retired_add(&st, ROTATION_MAX_RETIRED,
		    &rt), 0);
		assert_ptr_equal(rt, &st.retired[i]);
		rt->gen = (uint32_t)i + 1;
	}
	assert_int_equal(rotation_retired_add(&st, ROTATION_MAX_RETIRED, &rt),
	    BOTID_ERR_BUSY);
	assert_null(rt);
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED);
	/* The removal's extra entry, then nothing more. */
	assert_int_equal(rotation_retired_add(&st, ROTATION_MAX_RETIRED + 1,
	    &rt), 0);
	assert_int_equal(rotation_retired_add(&st, ROTATION_MAX_RETIRED + 1,
	    &rt), BOTID_ERR_BUSY);
	assert_int_equal(rotation_retired_add(&st, ROTATION_MAX_RETIRED + 2,
	    &rt), BOTID_ERR_INTERNAL);
	assert_null(rt);
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED + 1);
}

/*
 * A bot back after its removal with every entry taken, removed again:
 * before the fix this wrote retired[ROTATION_MAX_RETIRED + 1], past the
 * array, on the stack. Nothing may be destroyed then: the current key
 * would be lost with no entry to revoke its certificate.
 */
static void
test_destroy_all_full(void **state)
{
	struct rotation_state st;
	size_t i;

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(st.bot, sizeof(st.bot), "full");
	st.backend = BOTID_BACKEND_TPM;
	st.key_type = BOTID_KEY_ECDSA_P256;
	st.gen = 20;
	st.pending = 21;
	for (i = 0; i < ROTATION_MAX_RETIRED + 1; i++) {
		st.retired[i].gen = (uint32_t)i + 1;
		st.retired[i].destroyed = 1;
	}
	st.nretired = ROTATION_MAX_RETIRED + 1;
	removes = 0;
	assert_int_equal(rotation_destroy_all(&st, &fake_be, "0B"),
	    BOTID_ERR_BUSY);
	assert_int_equal(removes, 0);
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(st.removed, 0);
	assert_int_equal(st.pending, 21);
}

/* With room, the current key is the last entry, and the state loads. */
static void
test_destroy_all_room(void **state)
{
	struct rotation_state st, back;
	size_t i;

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(st.bot, sizeof(st.bot), "room");
	st.backend = BOTID_BACKEND_TPM;
	st.key_type = BOTID_KEY_ECDSA_P256;
	st.gen = 20;
	for (i = 0; i < ROTATION_MAX_RETIRED; i++)
		st.retired[i].gen = (uint32_t)i + 1;
	st.nretired = ROTATION_MAX_RETIRED;
	removes = 0;
	assert_int_equal(rotation_destroy_all(&st, &fake_be, "0B"), 0);
	/* Each generation's signing key and the token key beside it. */
	assert_int_equal(removes, 2 * (ROTATION_MAX_RETIRED + 1));
	assert_int_equal(st.nretired, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(st.removed, 1);
	assert_int_equal(st.retired[ROTATION_MAX_RETIRED].gen, 20);
	assert_string_equal(st.retired[ROTATION_MAX_RETIRED].serial, "0B");
	assert_int_equal(rotation_save(tmpdir, &st), 0);
	assert_int_equal(rotation_load(tmpdir, "room", &back), 0);
	assert_int_equal(back.nretired, ROTATION_MAX_RETIRED + 1);
	assert_int_equal(back.removed, 1);
	rotation_free(&back);
	rotation_free(&st);
}

static void
test_lock(void **state)
{
	int fd1 = -1, fd2 = -1, fd3 = -1;

	(void)state;
	assert_int_equal(rotation_lock(tmpdir, "lk", 1, &fd1), 0);
	assert_true(fd1 >= 0);
	/* Another open of the same lock, as another thread would: busy. */
	assert_int_equal(rotation_lock(tmpdir, "lk", 0, &fd2), BOTID_ERR_BUSY);
	assert_int_equal(fd2, -1);
	/* Another bot's state is not held up. */
	assert_int_equal(rotation_lock(tmpdir, "other", 0, &fd3), 0);
	rotation_unlock(fd3);
	rotation_unlock(fd1);
	assert_int_equal(rotation_lock(tmpdir, "lk", 0, &fd2), 0);
	rotation_unlock(fd2);
	rotation_unlock(-1);
}

#define RMW_THREADS	4
#define RMW_ROUNDS	50

/* Read-modify-write of one bot's state under its lock, like the agent. */
static void *
rmw_main(void *arg)
{
	struct rotation_state st;
	int *failures = arg, i, lock;

	for (i = 0; i < RMW_ROUNDS; i++) {
		if (rotation_lock(tmpdir, "rmw", 1, &lock) != 0) {
			(*failures)++;
			continue;
		}
		if (rotation_load(tmpdir, "rmw", &st) != 0) {
			(*failures)++;
			rotation_unlock(lock);
			continue;
		}
		st.gen++;
		if (rotation_save(tmpdir, &st) != 0)
			(*failures)++;
		rotation_free(&st);
		rotation_unlock(lock);
	}
	return NULL;
}

/* No update is lost: every increment of every thread is in the file. */
static void
test_lock_no_lost_update(void **state)
{
	struct rotation_state st;
	pthread_t t[RMW_THREADS];
	int failures[RMW_THREADS], i;

	(void)state;
	write_state("rmw", 0, 0);
	for (i = 0; i < RMW_THREADS; i++) {
		failures[i] = 0;
		assert_int_equal(pthread_create(&t[i], NULL, rmw_main,
		    &failures[i]), 0);
	}
	for (i = 0; i < RMW_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(failures[i], 0);
	}
	assert_int_equal(rotation_load(tmpdir, "rmw", &st), 0);
	assert_int_equal(st.gen, 20 + RMW_THREADS * RMW_ROUNDS);
	rotation_free(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_max),
		cmocka_unit_test(test_load_max_plus_one_refused),
		cmocka_unit_test(test_load_removed),
		cmocka_unit_test(test_retired_add),
		cmocka_unit_test(test_destroy_all_full),
		cmocka_unit_test(test_destroy_all_room),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_lock_no_lost_update),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
