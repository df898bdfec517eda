/*
 * Unit tests for lib/file.c: threads replacing one file at once each
 * succeed, a reader meanwhile sees one writer's whole content and never
 * a mix or a short file, and no temporary file is left behind. With one
 * temporary name per process (path.PID.tmp) the writers unlinked and
 * renamed each other's half-written files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/error.h"
#include "lib/file.h"

#define WRITERS		6
#define ROUNDS		60
#define CONTENT_LEN	(64u * 1024u)	/* several write() calls' worth */

static char tmpdir[64];
static char path[128];
static int stop_reading;

struct writer {
	pthread_t	 thread;
	uint8_t		 fill;
	int		 failures;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t *content;
	int i;

	if ((content = malloc(CONTENT_LEN)) == NULL) {
		w->failures = ROUNDS;
		return NULL;
	}
	memset(content, w->fill, CONTENT_LEN);
	for (i = 0; i < ROUNDS; i++)
		if (file_write_atomic(path, content, CONTENT_LEN, 0600) != 0)
			w->failures++;
	free(content);
	return NULL;
}

/* Counts reads that were not one writer's whole content. */
static void *
reader_main(void *arg)
{
	unsigned *torn = arg;
	uint8_t *data;
	size_t len, i;

	while (!__atomic_load_n(&stop_reading, __ATOMIC_ACQUIRE)) {
		if (file_read(path, 2 * CONTENT_LEN, &data, &len) != 0) {
			(*torn)++;
			continue;
		}
		for (i = 1; i < len && data[i] == data[0]; i++)
			;
		if (len != CONTENT_LEN || i != len)
			(*torn)++;
		free(data);
	}
	return NULL;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-file.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/state.json", tmpdir);
	return 0;
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
test_concurrent_writers(void **state)
{
	struct writer w[WRITERS];
	pthread_t reader;
	unsigned torn = 0;
	struct dirent *de;
	uint8_t *data, *first;
	size_t len, i, files = 0;
	DIR *d;
	int k;

	(void)state;
	/* A whole file exists before the reader starts. */
	assert_non_null(first = malloc(CONTENT_LEN));
	memset(first, 'a', CONTENT_LEN);
	assert_int_equal(file_write_atomic(path, first, CONTENT_LEN, 0600), 0);
	free(first);
	assert_int_equal(pthread_create(&reader, NULL, reader_main, &torn), 0);
	for (k = 0; k < WRITERS; k++) {
		w[k].fill = (uint8_t)('b' + k);
		w[k].failures = 0;
		assert_int_equal(pthread_create(&w[k].thread, NULL,
		    writer_main, &w[k]), 0);
	}
	for (k = 0; k < WRITERS; k++) {
		assert_int_equal(pthread_join(w[k].thread, NULL), 0);
		assert_int_equal(w[k].failures, 0);
	}
	__atomic_store_n(&stop_reading, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(reader, NULL), 0);
	assert_int_equal(torn, 0);

	assert_int_equal(file_read(path, 2 * CONTENT_LEN, &data, &len), 0);
	assert_int_equal(len, CONTENT_LEN);
	for (i = 1; i < len; i++)
		if (data[i] != data[0])
			break;
	assert_int_equal(i, len);
	assert_true(data[0] >= 'b' && data[0] < 'b' + WRITERS);
	free(data);

	/* Only the file itself: every temporary name was renamed or removed. */
	assert_non_null(d = opendir(tmpdir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			assert_string_equal(de->d_name, "state.json");
			files++;
		}
	closedir(d);
	assert_int_equal(files, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_writers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
