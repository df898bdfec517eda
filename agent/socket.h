/*
 * The agent's listening Unix socket: handed over by systemd socket
 * activation, or created with the configured path, mode and group.
 */
#ifndef BOTID_AGENT_SOCKET_H
#define BOTID_AGENT_SOCKET_H

#include "agent/config.h"

/*
 * Returns in *fdp a non-blocking listening socket. Refuses to replace a
 * socket another agent is listening on, or a path that is not a socket.
 * Errors: BOTID_ERR_IO, BOTID_ERR_CONFIG, BOTID_ERR_TOO_LARGE (path).
 */
int	socket_listen(const struct botid_agent_config *cfg, int *fdp,
	    int *activated);

/*
 * Returns in *fdp the listening ssh-agent socket at cfg->ssh_socket_path
 * (same mode and group as the main socket), or -1 when none is
 * configured. Errors: as socket_listen().
 */
int	socket_listen_ssh(const struct botid_agent_config *cfg, int *fdp);

#endif /* BOTID_AGENT_SOCKET_H */
