/*
 * Unit tests for agent/anchor.c's queue (doc/audit.md, "The anchor at
 * botid-ca"): with the CA away, the queue keeps at most
 * BOTID_MAX_ANCHOR_QUEUE checkpoints, the oldest going with one log line
 * each, and its file is then replaced whole (temporary file, rename,
 * 0600); a
 * line the cap took while it was being sent does not take the next one
 * with it once the CA has it. The CA client and host state are stubs
 * here; log_msg and rename are wrapped by the linker to watch them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "agent/anchor.h"
#include "attest/ca-client.h"
#include "attest/host-state.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/log.h"

#define QUEUE_NAME	"audit-anchor.queue"
#define CAP_MESSAGE	"audit anchor: 4096 checkpoints wait for the CA: the " \
			"oldest is dropped"
#define EXTRA		5	/* lines queued beyond the cap */

/* The cap doc/audit.md states. */
_Static_assert(BOTID_MAX_ANCHOR_QUEUE == 4096, "doc/audit.md says 4096");

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char dir[64];
static char queue_path[128];
/* What the stub CA saw, and how it answers. */
static char *posted[8];
static size_t nposted;
static int released;		/* the first POST may answer */
static int first_result;	/* its answer; later ones: the CA is down */
static int bad_request;		/* a POST without the host or checkpoint */
/* What the wrapped log_msg and rename saw. */
static size_t cap_logs;
static size_t renames;		/* of the queue file */
static size_t rename_lines;	/* lines the renamed file held */
static char rename_first[32], rename_last[32];
static int rename_from_dir;	/* the temporary file was beside it */

void	__wrap_log_msg(enum botid_log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	__wrap_rename(const char *, const char *);
int	__real_rename(const char *, const char *);

void
__wrap_log_msg(enum botid_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&mu);
	if (strcmp(msg, CAP_MESSAGE) == 0)
		cap_logs++;
	pthread_mutex_unlock(&mu);
}

/* Lines of the file at path: how many, the first and the last. */
static size_t
lines_of(const char *path, char first[32], char last[32])
{
	char buf[32];
	size_t n = 0;
	FILE *f;

	first[0] = last[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if (n++ == 0)
			memcpy(first, buf, sizeof(buf));
		memcpy(last, buf, sizeof(buf));
	}
	fclose(f);
	return n;
}

/* The queue file is replaced: look at the temporary file first. */
int
__wrap_rename(const char *from, const char *to)
{
	char first[32], last[32];
	size_t n;
	int r;

	if (strcmp(to, queue_path) != 0)
		return __real_rename(from, to);
	n = lines_of(from, first, last);
	r = __real_rename(from, to);
	pthread_mutex_lock(&mu);
	renames++;
	rename_lines = n;
	memcpy(rename_first, first, sizeof(first));
	memcpy(rename_last, last, sizeof(last));
	rename_from_dir = strncmp(from, queue_path, strlen(queue_path)) == 0 &&
	    strchr(from + strlen(dir) + 1, '/') == NULL;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return r;
}

/* Stubs: an enrolled host, a CA client that never touches the network. */
int
host_state_load(const char *state_dir, struct host_state *hs, char *err,
    size_t errlen)
{
	(void)state_dir;
	(void)err;
	(void)errlen;
	memset(hs, 0, sizeof(*hs));
	hs->enrolled = 1;
	if ((hs->host_id = strdup("host-1")) == NULL ||
	    (hs->ca_url = strdup("https://ca.invalid:8443")) == NULL ||
	    (hs->bundle_path = strdup("/nonexistent/ca-bundle.pem")) == NULL)
		return BOTID_ERR_ALLOC;
	return 0;
}

void
host_state_free(struct host_state *hs)
{
	free(hs->host_id);
	free(hs->ca_url);
	free(hs->bundle_path);
	memset(hs, 0, sizeof(*hs));
}

static char fake_client;

int
ca_client_new(const char *url, const char *bundle_path, struct ca_client **cp)
{
	(void)url;
	(void)bundle_path;
	*cp = (struct ca_client *)&fake_client;
	return 0;
}

void
ca_client_free(struct ca_client *c)
{
	(void)c;
}

/*
 * The first POST waits until the test releases it, so the test can queue
 * past the cap while that line is being sent; every later one finds the
 * CA down.
 */
int
ca_client_post(struct ca_client *c, const char *path, json_t *req,
    json_t **resp, char *err, size_t errlen)
{
	const char *host, *line;
	size_t me;
	int r;

	(void)c;
	*resp = NULL;
	host = json_string_value(json_object_get(req, "host_id"));
	line = json_string_value(json_object_get(req, "checkpoint"));
	pthread_mutex_lock(&mu);
	if (strcmp(path, "/v1/audit/anchor") != 0 || host == NULL ||
	    strcmp(host, "host-1") != 0 || line == NULL)
		bad_request = 1;
	me = nposted;
	if (nposted < sizeof(posted) / sizeof(posted[0]))
		posted[nposted++] = strdup(line != NULL ? line : "");
	pthread_cond_broadcast(&cv);
	while (me == 0 && !released)
		pthread_cond_wait(&cv, &mu);
	r = me == 0 ? first_result : BOTID_ERR_IO;
	pthread_mutex_unlock(&mu);
	snprintf(err, errlen, "%s", r == 0 ? "taken" : "CA down (stub)");
	return r;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-anchor.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(queue_path, sizeof(queue_path), "%s/%s", dir, QUEUE_NAME);
	nposted = 0;
	released = 0;
	bad_request = 0;
	cap_logs = renames = rename_lines = 0;
	rename_from_dir = 0;
	return 0;
}

static int
teardown(void **state)
{
	struct dirent *e;
	DIR *d;
	size_t i;

	(void)state;
	for (i = 0; i < nposted; i++)
		free(posted[i]);
	nposted = 0;
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				(void)unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
	return 0;
}

static void
line_name(size_t i, char *out, size_t len)
{
	snprintf(out, len, "cp-%05zu", i);
}

/*
 * Queues line 0, waits until the sender is sending it, then queues lines
 * 1 to BOTID_MAX_ANCHOR_QUEUE + EXTRA - 1, and lets the first POST answer
 * result.
 */
static void
fill_past_cap(int result)
{
	char name[32];
	size_t i;

	assert_int_equal(anchor_start(dir), 0);
	line_name(0, name, sizeof(name));
	anchor_enqueue(name, strlen(name));
	pthread_mutex_lock(&mu);
	while (nposted == 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	for (i = 1; i < BOTID_MAX_ANCHOR_QUEUE + EXTRA; i++) {
		line_name(i, name, sizeof(name));
		anchor_enqueue(name, strlen(name));
	}
	pthread_mutex_lock(&mu);
	/* One line for each checkpoint dropped, none before the cap. */
	assert_int_equal(cap_logs, EXTRA);
	first_result = result;
	released = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* The file holds exactly lines from to BOTID_MAX_ANCHOR_QUEUE + EXTRA - 1. */
static void
assert_file_holds_from(size_t from)
{
	char buf[64], want[32];
	struct stat st;
	struct dirent *e;
	size_t n = 0;
	DIR *d;
	FILE *f;

	assert_int_equal(stat(queue_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(f = fopen(queue_path, "r"));
	while (fgets(buf, sizeof(buf), f) != NULL) {
		line_name(from + n, want, sizeof(want));
		strcat(want, "\n");
		assert_string_equal(buf, want);
		n++;
	}
	fclose(f);
	assert_int_equal(from + n, BOTID_MAX_ANCHOR_QUEUE + EXTRA);
	/* Nothing but the queue file is left: no temporary file. */
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			assert_string_equal(e->d_name, QUEUE_NAME);
	closedir(d);
}

static void
test_cap_drops_oldest(void **state)
{
	char want[32];

	(void)state;
	fill_past_cap(BOTID_ERR_IO);
	/* The CA is down: the sender writes the queue out and waits. */
	pthread_mutex_lock(&mu);
	while (renames == 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	anchor_stop();
	assert_false(bad_request);
	assert_int_equal(nposted, 1);
	assert_string_equal(posted[0], "cp-00000");
	/* Replaced whole, by a complete temporary file beside it. */
	assert_int_equal(renames, 1);
	assert_true(rename_from_dir);
	assert_int_equal(rename_lines, BOTID_MAX_ANCHOR_QUEUE);
	line_name(EXTRA, want, sizeof(want));
	assert_string_equal(rename_first, want);
	line_name(BOTID_MAX_ANCHOR_QUEUE + EXTRA - 1, want, sizeof(want));
	assert_string_equal(rename_last, want);
	/* The oldest EXTRA went, the newest stayed, in order. */
	assert_file_holds_from(EXTRA);
	assert_int_equal(cap_logs, EXTRA);
}

static void
test_sent_line_capped_keeps_next(void **state)
{
	(void)state;
	/* The CA takes line 0, which the cap already dropped. */
	fill_past_cap(0);
	pthread_mutex_lock(&mu);
	while (nposted < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	anchor_stop();
	assert_false(bad_request);
	/* The next sent is the oldest still queued: nothing skipped. */
	assert_string_equal(posted[0], "cp-00000");
	assert_string_equal(posted[1], "cp-00005");
	assert_file_holds_from(EXTRA);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cap_drops_oldest, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_sent_line_capped_keeps_next, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
