/*
 * Audit anchor sender (anchor.h). Why it works this way:
 *  - The loop thread appends to a list under a lock and signals: it never
 *    does network or file work here, so signing never waits on the CA.
 *  - The sender thread owns the queue file: it appends what was queued,
 *    sends the oldest line first, and rewrites the file without it once
 *    the CA has it, so checkpoints reach the CA in the order made.
 *  - A CA that does not answer is retried with a doubling pause (up to
 *    ANCHOR_RETRY_MAX seconds); one that refuses a checkpoint (replay,
 *    bad signature) will refuse it again, so it is logged and dropped.
 *  - The CA keeps the newest checkpoint per host: a checkpoint lost from
 *    the queue (crash before it was written) is superseded by the next.
 *  - The queue holds at most BOTID_MAX_ANCHOR_QUEUE; beyond, the oldest
 *    goes. A line being sent may go so: once the CA has it, the sender
 *    removes the head only if that is still the line it sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/anchor.h"
#include "attest/ca-client.h"
#include "attest/host-state.h"
#include "lib/error.h"
#include "lib/file.h"
#include "lib/limits.h"
#include "lib/log.h"

#define QUEUE_FILE		"audit-anchor.queue"
#define ANCHOR_PATH		"/v1/audit/anchor"
#define ANCHOR_RETRY_MIN	1	/* seconds */
#define ANCHOR_RETRY_MAX	16
#define QUEUE_FILE_MAX		(16u * 1024u * 1024u)	/* bytes */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_t sender;
static int running, stopping, enabled;
static int unreachable;		/* the last attempt found no CA */
static char *queue_path, *host_id;
static struct ca_client *ca;
/* The queue, oldest first; lines [0, persisted) are in the file. */
static char **lines;
static size_t nlines, persisted;
static int rewrite;		/* the file holds lines no longer queued */
static size_t snapshot, drops;	/* lines being written, dropped since */
static uint64_t capped;		/* heads dropped by the cap, ever */

static void
queue_drop_head(void)
{
	free(lines[0]);
	memmove(lines, lines + 1, (nlines - 1) * sizeof(*lines));
	nlines--;
	if (persisted > 0)
		persisted--;
	drops++;
	rewrite = 1;
}

/*
 * Under lock: what the file lacks, as text for persist_write: every line
 * (*whole set: the file is replaced) or those not written yet. NULL when
 * the file is up to date (or without memory: the next round tries again).
 */
static char *
persist_prepare(int *whole, size_t *len)
{
	char *text, *p;
	size_t i, from, n = 0;

	*whole = rewrite;
	*len = 0;
	if (queue_path == NULL || (!rewrite && persisted == nlines))
		return NULL;
	from = rewrite ? 0 : persisted;
	for (i = from; i < nlines; i++)
		n += strlen(lines[i]) + 1;
	if ((text = malloc(n + 1)) == NULL)
		return NULL;
	for (p = text, i = from; i < nlines; i++) {
		n = strlen(lines[i]);
		memcpy(p, lines[i], n);
		p[n] = '\n';
		p += n + 1;
	}
	*len = (size_t)(p - text);
	/* Lines queued or dropped from here on are the next round's. */
	rewrite = 0;
	drops = 0;
	snapshot = nlines;
	return text;
}

/* Without the lock: replaces the file with, or appends, len bytes. */
static int
persist_write(int whole, const char *text, size_t len)
{
	int fd, r = -1;

	if (whole)
		return file_write_atomic(queue_path, text, len, 0600) == 0 ?
		    0 : -1;
	if ((fd = open(queue_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_err("audit anchor: %s: %s", queue_path, strerror(errno));
		return -1;
	}
	if (file_write_all(fd, text, len) == -1 || fsync(fd) == -1)
		log_err("audit anchor: %s: %s", queue_path, strerror(errno));
	else
		r = 0;
	close(fd);
	return r;
}

/* Under lock: the file now holds the snapshot, less what went since. */
static void
persist_done(int ok)
{
	if (!ok) {
		rewrite = 1;	/* a partial append: write it all again */
		return;
	}
	persisted = snapshot >= drops ? snapshot - drops : 0;
}

/*
 * Brings the file in line with the queue; called with the lock held,
 * which it lets go while it writes, so that the loop thread queueing a
 * checkpoint never waits for the disk.
 */
static void
queue_persist(void)
{
	char *text;
	size_t len;
	int whole;

	if ((text = persist_prepare(&whole, &len)) == NULL)
		return;
	(void)pthread_mutex_unlock(&lock);
	whole = persist_write(whole, text, len) == 0 ? whole : -1;
	free(text);
	(void)pthread_mutex_lock(&lock);
	persist_done(whole != -1);
}

/* Under lock: appends a copy of line; the oldest goes when full. */
static void
queue_push(const char *line, size_t len)
{
	char *copy;

	if ((copy = strndup(line, len)) == NULL) {
		log_err("audit anchor: out of memory: checkpoint not queued");
		return;
	}
	if (nlines == BOTID_MAX_ANCHOR_QUEUE) {
		log_err("audit anchor: %u checkpoints wait for the CA: the "
		    "oldest is dropped", BOTID_MAX_ANCHOR_QUEUE);
		queue_drop_head();
		capped++;
	}
	lines[nlines++] = copy;
}

/* Reads what an earlier run left queued. */
static int
queue_load(void)
{
	uint8_t *data = NULL;
	size_t len = 0, i, start = 0;
	int r;

	r = file_read(queue_path, QUEUE_FILE_MAX, &data, &len);
	if (r == BOTID_ERR_NOT_FOUND)
		return 0;
	if (r != 0) {
		log_err("audit anchor: %s unreadable: %s", queue_path,
		    botid_strerror(r));
		return 0;
	}
	for (i = 0; i < len; i++)
		if (data[i] == '\n') {
			if (i > start)
				queue_push((const char *)data + start,
				    i - start);
			start = i + 1;
		}
	persisted = nlines;
	/* A cut last line, or more than the cap: write the queue out. */
	if (start != len)
		rewrite = 1;
	free(data);
	return 0;
}

/* One POST of line. Errors as ca_client_post. */
static int
send_one(const char *line)
{
	char err[512];
	json_t *req, *resp = NULL;
	int r;

	if ((req = json_pack("{s:s, s:s}", "host_id", host_id, "checkpoint",
	    line)) == NULL)
		return BOTID_ERR_ALLOC;
	r = ca_client_post(ca, ANCHOR_PATH, req, &resp, err, sizeof(err));
	if (r == BOTID_ERR_DENIED || r == BOTID_ERR_INVALID)
		log_err("audit anchor: the CA refused a checkpoint, "
		    "dropped: %s", err);
	else if (r != 0)
		log_warn("audit anchor: not sent, will retry: %s", err);
	json_decref(req);
	json_decref(resp);
	return r;
}

static void *
sender_main(void *arg)
{
	struct timespec until;
	time_t next_try = 0;
	unsigned pause = ANCHOR_RETRY_MIN;
	uint64_t capped_before;
	char *line;
	int r;

	(void)arg;
	(void)pthread_mutex_lock(&lock);
	for (;;) {
		queue_persist();
		if (stopping)
			break;
		if (nlines == 0 || time(NULL) < next_try) {
			if (nlines == 0)
				(void)pthread_cond_wait(&cond, &lock);
			else {
				until.tv_sec = next_try;
				until.tv_nsec = 0;
				(void)pthread_cond_timedwait(&cond, &lock,
				    &until);
			}
			continue;
		}
		line = strdup(lines[0]);
		capped_before = capped;
		(void)pthread_mutex_unlock(&lock);
		r = line != NULL ? send_one(line) : BOTID_ERR_ALLOC;
		free(line);
		(void)pthread_mutex_lock(&lock);
		unreachable = r != 0 && r != BOTID_ERR_DENIED &&
		    r != BOTID_ERR_INVALID;
		if (!unreachable) {
			/* The cap took that line meanwhile: keep the head. */
			if (capped == capped_before)
				queue_drop_head();
			pause = ANCHOR_RETRY_MIN;
			next_try = 0;
		} else {
			next_try = time(NULL) + pause;
			pause = pause * 2 > ANCHOR_RETRY_MAX ?
			    ANCHOR_RETRY_MAX : pause * 2;
		}
	}
	(void)pthread_mutex_unlock(&lock);
	return NULL;
}

int
anchor_start(const char *state_dir)
{
	struct host_state hs;
	char err[512];
	int r = BOTID_ERR_ALLOC;

	memset(&hs, 0, sizeof(hs));
	if (host_state_load(state_dir, &hs, err, sizeof(err)) != 0 ||
	    !hs.enrolled) {
		host_state_free(&hs);
		return 0;	/* no CA to anchor at */
	}
	if (asprintf(&queue_path, "%s/%s", state_dir, QUEUE_FILE) == -1) {
		queue_path = NULL;
		goto out;
	}
	if ((host_id = strdup(hs.host_id)) == NULL ||
	    (lines = calloc(BOTID_MAX_ANCHOR_QUEUE, sizeof(*lines))) == NULL)
		goto out;
	if ((r = ca_client_new(hs.ca_url, hs.bundle_path, &ca)) != 0) {
		log_err("audit anchor: bad CA URL '%s'", hs.ca_url);
		goto out;
	}
	(void)pthread_mutex_lock(&lock);
	/* A start after a stop (tests) begins from the file alone. */
	nlines = persisted = snapshot = drops = 0;
	rewrite = stopping = unreachable = 0;
	r = queue_load();
	(void)pthread_mutex_unlock(&lock);
	enabled = 1;
	if ((errno = pthread_create(&sender, NULL, sender_main, NULL)) != 0) {
		log_err("audit anchor: pthread_create: %s", strerror(errno));
		r = BOTID_ERR_INTERNAL;
		goto out;
	}
	running = 1;
	r = 0;
 out:
	host_state_free(&hs);
	return r;
}

void
anchor_enqueue(const char *line, size_t len)
{
	if (!enabled)
		return;
	(void)pthread_mutex_lock(&lock);
	queue_push(line, len);
	if (running)
		(void)pthread_cond_signal(&cond);
	else
		queue_persist();
	(void)pthread_mutex_unlock(&lock);
}

void
anchor_stop(void)
{
	char *line;
	int r;

	if (!running)
		return;
	(void)pthread_mutex_lock(&lock);
	stopping = 1;
	(void)pthread_cond_signal(&cond);
	(void)pthread_mutex_unlock(&lock);
	(void)pthread_join(sender, NULL);
	running = 0;
	/*
	 * One more try for what is queued (the shutdown checkpoint), unless
	 * the CA did not answer the last one: a stop does not wait for it.
	 */
	while (!unreachable) {
		(void)pthread_mutex_lock(&lock);
		line = nlines > 0 ? strdup(lines[0]) : NULL;
		(void)pthread_mutex_unlock(&lock);
		if (line == NULL)
			break;
		r = send_one(line);
		free(line);
		unreachable = r != 0 && r != BOTID_ERR_DENIED &&
		    r != BOTID_ERR_INVALID;
		(void)pthread_mutex_lock(&lock);
		if (!unreachable)
			queue_drop_head();
		(void)pthread_mutex_unlock(&lock);
	}
	(void)pthread_mutex_lock(&lock);
	queue_persist();
	enabled = 0;
	while (nlines > 0)
		queue_drop_head();
	(void)pthread_mutex_unlock(&lock);
	free(lines);
	lines = NULL;
	free(queue_path);
	queue_path = NULL;
	free(host_id);
	host_id = NULL;
	ca_client_free(ca);
	ca = NULL;
}
