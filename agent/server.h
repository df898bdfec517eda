/*
 * The agent's event loop: accepts connections, decodes frames, decides who
 * may use which bot, hands signing to the worker pools and writes replies
 * and audit entries. Runs on the main thread until SIGTERM/SIGINT.
 */
#ifndef BOTID_AGENT_SERVER_H
#define BOTID_AGENT_SERVER_H

#include "agent/config.h"

/*
 * Serves on listen_fd, and the ssh-agent protocol on ssh_fd (-1: none), with the configuration read from config_path (cfg,
 * ownership taken). SIGHUP reloads config_path. Returns 0 after a clean
 * drain, or a BOTID_ERR_* if the loop could not be set up.
 */
int	server_run(const char *config_path, struct botid_agent_config *cfg,
	    int listen_fd, int ssh_fd);

#endif /* BOTID_AGENT_SERVER_H */
