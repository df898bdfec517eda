/*
 * botid-agent: keeps each bot's private key inside a TPM or PKCS#11 token
 * and signs for allowed local callers over a Unix socket.
 */
#include "botid-config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/audit.h"
#include "agent/config.h"
#include "agent/server.h"
#include "agent/socket.h"
#include "lib/error.h"
#include "lib/log.h"

#define DEFAULT_CONFIG	BOTID_SYSCONFDIR "/botid/agent.conf"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: botid-agent [-c FILE] [--check-config] [--syslog] [-v]\n"
	    "  -c, --config FILE   configuration (default %s)\n"
	    "  -t, --check-config  validate the configuration and exit\n"
	    "      --syslog        log to syslog instead of stderr\n"
	    "  -v, --verbose       log debug messages\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "See botid-agent(8) and botid-agent.conf(5).\n", DEFAULT_CONFIG);
}

/* No core dumps, no ptrace by other users, files private by default. */
static int
harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    setrlimit(RLIMIT_CORE, &rl) == -1)
		return -1;
	umask(0077);
	return 0;
}

/*
 * Raises the soft descriptor limit to the hard one: systemd and login
 * sessions start daemons at 1024, below what max_connections and each
 * connection's sender pidfd need. The server caps its connections to what
 * the limit in force allows (server.c, conn_cap); this logs that limit.
 */
static void
nofile_raise(void)
{
	struct rlimit rl;
	unsigned long long was;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("descriptor limit: getrlimit: %s", strerror(errno));
		return;
	}
	was = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max) {
		log_info("descriptor limit: %llu", was);
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("descriptor limit: %llu, not raised to the hard limit "
		    "%llu: %s", was, (unsigned long long)rl.rlim_max,
		    strerror(errno));
		return;
	}
	log_info("descriptor limit: %llu (raised from %llu)",
	    (unsigned long long)rl.rlim_cur, was);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct botid_agent_config *cfg = NULL;
	const char *path = DEFAULT_CONFIG;
	int ch, check = 0, use_syslog = 0, activated = 0, listen_fd = -1, r;
	int ssh_fd = -1;
	enum botid_log_level level = BOTID_LOG_INFO;
	char err[512];

	while ((ch = getopt_long(argc, argv, "c:tvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'S':
			use_syslog = 1;
			break;
		case 'v':
			level = BOTID_LOG_DEBUG;
			break;
		case 'V':
			printf("botid-agent %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("botid-agent", level, use_syslog);
	if ((r = config_load(path, &cfg, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: OK (%zu bots)\n", path, cfg->nbots);
		config_free(cfg);
		return 0;
	}
	if (harden_process() == -1) {
		log_err("cannot disable core dumps: %s", strerror(errno));
		config_free(cfg);
		return 1;
	}
	nofile_raise();
	if (mkdir(cfg->state_dir, 0700) == -1 && errno != EEXIST) {
		log_err("state directory %s: %s", cfg->state_dir, strerror(errno));
		config_free(cfg);
		return 1;
	}
	if (audit_open(cfg->audit_log) != 0) {
		config_free(cfg);
		return 1;
	}
	audit_configure(cfg);
	if (audit_resume(cfg) != 0) {
		config_free(cfg);
		audit_close();
		return 1;
	}
	if (socket_listen(cfg, &listen_fd, &activated) != 0) {
		config_free(cfg);
		audit_close();
		return 1;
	}
	log_info("listening on %s", activated ? "the systemd socket" :
	    cfg->socket_path);
	if (socket_listen_ssh(cfg, &ssh_fd) != 0) {
		close(listen_fd);
		if (!activated)
			unlink(cfg->socket_path);
		config_free(cfg);
		audit_close();
		return 1;
	}
	if (ssh_fd != -1)
		log_info("ssh-agent protocol on %s", cfg->ssh_socket_path);
	{
		char *sock = activated ? NULL : strdup(cfg->socket_path);
		char *ssh_sock = ssh_fd == -1 ? NULL :
		    strdup(cfg->ssh_socket_path);

		/* server_run owns cfg (and closes both sockets) from here on. */
		r = server_run(path, cfg, listen_fd, ssh_fd);
		if (sock != NULL) {
			unlink(sock);
			free(sock);
		}
		if (ssh_sock != NULL) {
			unlink(ssh_sock);
			free(ssh_sock);
		}
	}
	audit_close();
	if (r != 0) {
		log_err("exiting: %s", botid_strerror(r));
		return 1;
	}
	log_info("stopped");
	return 0;
}
