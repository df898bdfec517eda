/*
 * libFuzzer harness for the agent's configuration parser (agent/config.c):
 * the input is the whole file. config_load() reads a path, so each input is
 * written to one private file first. Anything may be refused; what is
 * accepted must hold together.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"

static char conf_path[4096];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/botid-fuzz-config.XXXXXX";

	(void)argc;
	(void)argv;
	/* Refusals are logged; a fuzzer makes millions of them. */
	log_init("fuzz-config", BOTID_LOG_ERR, 0);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(conf_path, sizeof(conf_path), "%s/agent.conf", dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct botid_agent_config *cfg = NULL;
	char err[512];
	size_t i, off = 0;
	ssize_t n;
	int fd;

	if ((fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		abort();
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	if (close(fd) == -1)
		abort();
	err[0] = '\0';
	if (config_load(conf_path, &cfg, err, sizeof(err)) != 0) {
		FUZZ_CHECK(cfg == NULL);
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(cfg != NULL && cfg->socket_path != NULL &&
	    cfg->state_dir != NULL);
	for (i = 0; i < cfg->nbots; i++) {
		FUZZ_CHECK(cfg->bots[i].name != NULL);
		FUZZ_CHECK(cfg->bots[i].nallow > 0 || cfg->bots[i].allow == NULL);
	}
	config_free(cfg);
	return 0;
}
